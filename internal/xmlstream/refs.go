package xmlstream

// parseRef decodes the reference starting at p[i] == '&' and returns the
// character and the index after the ';'. RFC 6120 §11.1 allows only the
// five predefined entities and character references; any other well-formed
// entity reference is restricted XML rather than malformed, so the peer is
// told which rule it broke.
func parseRef(p []byte, i int, off int64) (rune, int, error) {
	j := i + 1
	if j < len(p) && p[j] == '#' {
		j++
		base := rune(10)
		if j < len(p) && p[j] == 'x' {
			base = 16
			j++
		}
		start := j
		var v rune
		for ; j < len(p) && p[j] != ';'; j++ {
			c := p[j]
			var d rune
			switch {
			case c >= '0' && c <= '9':
				d = rune(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = rune(c-'A') + 10
			default:
				return 0, j, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid character reference")
			}
			if v <= 0x10FFFF { // saturate: leading zeros are legal, overflow is not
				v = v*base + d
			}
		}
		if j == start || j >= len(p) {
			return 0, j, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid character reference")
		}
		if !isChar(v) {
			return 0, j, errAt(ErrNotWellFormed, codeCharRef, off+int64(i), "character reference to a character XML does not allow")
		}
		return v, j + 1, nil
	}
	e, err := scanName(p, j, off)
	if err != nil || e >= len(p) || p[e] != ';' {
		return 0, j, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid entity reference")
	}
	switch string(p[j:e]) {
	case "lt":
		return '<', e + 1, nil
	case "gt":
		return '>', e + 1, nil
	case "amp":
		return '&', e + 1, nil
	case "apos":
		return '\'', e + 1, nil
	case "quot":
		return '"', e + 1, nil
	}
	return 0, j, errAt(ErrRestrictedXML, codeOther, off+int64(i), "entity reference other than the predefined ones")
}
