package xmlstream

import "unicode/utf8"

// Byte classes for the ASCII range. The hot loops over text, attribute
// values and names look a byte up in one table instead of running a chain of
// comparisons; anything at or above 0x80 is sent to the slow path, which
// decodes the rune.
const (
	clText      = 1 << iota // copied as-is in character data
	clAttr                  // copied as-is in an attribute value
	clNameStart             // may start a Name (':' included: QName splitting is separate)
	clName                  // may continue a Name
	clSpace                 // XML white space (S production)
)

var class = func() (t [256]uint8) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = clText | clAttr
	}
	// '<' and '&' start markup and references; '>' needs the "]]>" check in
	// text. Quotes are fine inside values: the closing quote was found
	// before the value is scanned.
	t['<'] &^= clText | clAttr
	t['&'] &^= clText | clAttr
	t['>'] &^= clText
	t['\t'] = clText | clSpace // a literal tab in an attribute is normalized to a space
	t['\n'] = clText | clSpace
	t['\r'] = clSpace // normalized to \n (text) or a space (attribute)
	t[' '] |= clSpace
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= clNameStart | clName
		t[c-'a'+'A'] |= clNameStart | clName
	}
	for c := '0'; c <= '9'; c++ {
		t[c] |= clName
	}
	t['_'] |= clNameStart | clName
	t[':'] |= clNameStart | clName
	t['-'] |= clName
	t['.'] |= clName
	return t
}()

// skipSpace returns the index of the first non-space byte of p at or after i.
func skipSpace(p []byte, i int) int {
	for i < len(p) && class[p[i]]&clSpace != 0 {
		i++
	}
	return i
}

// isChar reports whether r is a Char (XML 1.0 §2.2). Surrogates cannot
// occur: the UTF-8 decoder rejects them.
func isChar(r rune) bool {
	switch {
	case r < 0x20:
		return r == 0x9 || r == 0xA || r == 0xD
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= utf8.MaxRune
	}
}

// isNameStartRune and isNameRune implement NameStartChar and NameChar of
// XML 1.0 fifth edition (§2.3) for runes at or above 0x80.
func isNameStartRune(r rune) bool {
	switch {
	case r < 0xC0:
		return false
	case r <= 0x2FF:
		return r != 0xD7 && r != 0xF7
	case r < 0x370:
		return false
	case r <= 0x1FFF:
		return r != 0x37E
	case r == 0x200C || r == 0x200D:
		return true
	case r >= 0x2070 && r <= 0x218F:
		return true
	case r >= 0x2C00 && r <= 0x2FEF:
		return true
	case r >= 0x3001 && r <= 0xD7FF:
		return true
	case r >= 0xF900 && r <= 0xFDCF:
		return true
	case r >= 0xFDF0 && r <= 0xFFFD:
		return true
	default:
		return r >= 0x10000 && r <= 0xEFFFF
	}
}

func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || (r >= 0x300 && r <= 0x36F) || r == 0x203F || r == 0x2040
}

// scanName returns the end of the Name starting at p[i]. It reports an
// error if no Name starts there; a non-name rune after the first character
// just ends the name (the caller then finds it where it expects '=', '>' or
// space and reports that).
func scanName(p []byte, i int, off int64) (int, error) {
	if i >= len(p) {
		return i, errAt(ErrNotWellFormed, codeOther, off+int64(i), "name expected")
	}
	if c := p[i]; c < utf8.RuneSelf {
		if class[c]&clNameStart == 0 {
			return i, errAt(ErrNotWellFormed, codeOther, off+int64(i), "name expected")
		}
		i++
	} else {
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n <= 1 {
			return i, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid UTF-8")
		}
		if !isNameStartRune(r) {
			return i, errAt(ErrNotWellFormed, codeNameChar, off+int64(i), "invalid name character")
		}
		i += n
	}
	for i < len(p) {
		c := p[i]
		if c < utf8.RuneSelf {
			if class[c]&clName == 0 {
				return i, nil
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n <= 1 {
			return i, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid UTF-8")
		}
		if !isNameRune(r) {
			return i, errAt(ErrNotWellFormed, codeNameChar, off+int64(i), "invalid name character")
		}
		i += n
	}
	return i, nil
}

// splitQName splits a name into prefix and local part per Namespaces in XML
// §4: at most one colon, with non-empty parts on both sides. It returns the
// index of the colon in name, or -1.
func splitQName(name []byte) (int, bool) {
	colon := -1
	for i, c := range name {
		if c == ':' {
			if colon >= 0 {
				return -1, false
			}
			colon = i
		}
	}
	if colon == 0 || colon == len(name)-1 {
		return -1, false
	}
	if colon > 0 {
		// The local part must start with a NameStartChar, which a
		// digit, '-' or '.' is not.
		c := name[colon+1]
		if c < utf8.RuneSelf && class[c]&clNameStart == 0 {
			return -1, false
		}
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRune(name[colon+1:]); n <= 1 || !isNameStartRune(r) {
				return -1, false
			}
		}
	}
	return colon, true
}
