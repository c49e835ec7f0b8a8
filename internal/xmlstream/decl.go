package xmlstream

import "bytes"

// isDeclStart reports whether p starts with an XML declaration rather than
// a processing instruction whose target merely begins with "xml"
// (<?xml-stylesheet ...?>). p must hold at least six bytes.
func isDeclStart(p []byte) bool {
	return len(p) >= 6 && bytes.HasPrefix(p, []byte("<?xml")) && class[p[5]]&clName == 0
}

// checkDecl validates an XML declaration (XML 1.0 §2.8), p being the whole
// "<?xml ... ?>". Only UTF-8 is accepted (RFC 6120 §11.6): a stream
// declared in any other encoding is refused rather than misread.
func checkDecl(p []byte, off int64) error {
	bad := func(i int, msg string) error {
		return errAt(ErrNotWellFormed, codeOther, off+int64(i), msg)
	}
	end := len(p) - 2 // at "?>"
	i := 5
	names := [...]string{"version", "encoding", "standalone"}
	next := 0
	for {
		k := skipSpace(p[:end], i)
		if k == end {
			break
		}
		if k == i {
			return bad(k, "white space expected in XML declaration")
		}
		ne, err := scanName(p[:end], k, off)
		if err != nil {
			return err
		}
		name := string(p[k:ne])
		for next < len(names) && names[next] != name {
			if next == 0 {
				return bad(k, "XML declaration without version")
			}
			next++
		}
		if next == len(names) {
			return bad(k, "unexpected "+name+" in XML declaration")
		}
		next++
		j := skipSpace(p[:end], ne)
		if j >= end || p[j] != '=' {
			return bad(j, "'=' expected in XML declaration")
		}
		j = skipSpace(p[:end], j+1)
		if j >= end || (p[j] != '\'' && p[j] != '"') {
			return bad(j, "quoted value expected in XML declaration")
		}
		q := bytes.IndexByte(p[j+1:end], p[j])
		if q < 0 {
			return bad(j, "unterminated value in XML declaration")
		}
		v := p[j+1 : j+1+q]
		switch name {
		case "version":
			if len(v) < 3 || string(v[:2]) != "1." || !allDigits(v[2:]) {
				return bad(j, "unsupported XML version")
			}
		case "encoding":
			if !bytes.EqualFold(v, []byte("UTF-8")) && !bytes.EqualFold(v, []byte("UTF8")) {
				return bad(j, "unsupported encoding (only UTF-8)")
			}
		case "standalone":
			if string(v) != "yes" && string(v) != "no" {
				return bad(j, "invalid standalone value")
			}
		}
		i = j + 2 + q
	}
	if next == 0 {
		return bad(5, "XML declaration without version")
	}
	return nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
