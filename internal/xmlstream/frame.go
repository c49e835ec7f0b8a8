package xmlstream

import "bytes"

// The framer finds where one element ends in a byte stream that arrives in
// pieces. It is a small resumable state machine: after each read it scans
// only the new bytes, so an element that trickles in one byte at a time
// costs linear, not quadratic, time (a client controlling packet sizes
// cannot make the server rescan). It knows just enough XML to find the
// boundary (tags, quoted attribute values, CDATA sections) and leaves full
// validation to the builder, which then makes one pass over the complete
// element. Every well-formed element has the same boundary under both;
// where the input is malformed the builder reports the error.
//
// While scanning it also counts elements, attributes and text runs so the
// builder can allocate each kind of tree node in one slab, and it enforces
// the limits as bytes arrive, so the server never buffers more than
// MaxElementBytes of one element.

type frameState uint8

const (
	fsLT       frameState = iota // just after '<'
	fsStartTag                   // inside a start tag, outside quotes
	fsQuote                      // inside a quoted attribute value
	fsEndTag                     // inside an end tag
	fsBang                       // after "<!": matching "[CDATA["
	fsCDATA                      // inside a CDATA section
	fsContent                    // character data between tags
)

const cdataOpen = "[CDATA["

type framer struct {
	state     frameState
	rootOnly  bool // stop after the first start tag (the stream header)
	prevSlash bool // last start-tag byte was '/', so '>' closes an empty element
	sawText   bool // the current content run already has bytes
	quote     byte
	k         int // progress through "[CDATA[" or the count of trailing ']'
	depth     int // open elements
	start     int // index of the element's '<' in the buffer
	pos       int // next byte to scan
	elems     int
	attrs     int // '=' signs in start tags: an upper bound on attributes
	texts     int // text runs and CDATA sections: an upper bound on text nodes
	empty     bool
}

// begin starts framing an element whose '<' is at p[start].
func (f *framer) begin(start int, rootOnly bool) {
	*f = framer{state: fsLT, rootOnly: rootOnly, start: start, pos: start + 1}
}

// shift adjusts the indices after the buffer was compacted by n bytes.
func (f *framer) shift(n int) {
	f.start -= n
	f.pos -= n
}

// scan advances over p[f.pos:] and reports whether the element is complete;
// it then ends at p[f.pos-1]. off is the stream offset of p[0], for errors.
func (f *framer) scan(p []byte, lim Limits, off int64) (bool, error) {
	limit := f.start + lim.MaxElementBytes
	end := len(p)
	if end > limit {
		end = limit
	}
	i := f.pos
	for i < end {
		switch f.state {
		case fsContent:
			j := bytes.IndexByte(p[i:end], '<')
			if j < 0 {
				f.sawText = true
				i = end
				continue
			}
			if j > 0 || f.sawText {
				f.texts++
			}
			f.sawText = false
			i += j + 1
			f.state = fsLT

		case fsLT:
			c := p[i]
			switch {
			case c == '/':
				f.state = fsEndTag
				i++
			case c == '!':
				f.state = fsBang
				f.k = 0
				i++
			case c == '?':
				return false, errAt(ErrRestrictedXML, codeOther, off+int64(i-1), "processing instruction")
			case class[c]&clNameStart != 0 || c >= 0x80:
				if f.depth+1 > lim.MaxDepth {
					return false, errAt(ErrTooLarge, codeOther, off+int64(i-1), "elements nested too deeply")
				}
				f.elems++
				f.state = fsStartTag
				f.prevSlash = false
			default:
				return false, errAt(ErrNotWellFormed, codeOther, off+int64(i), "name expected after '<'")
			}

		case fsStartTag:
			for i < end {
				c := p[i]
				i++
				if f.prevSlash && c != '>' {
					return false, errAt(ErrNotWellFormed, codeOther, off+int64(i-2), "'/' not followed by '>' in a tag")
				}
				switch c {
				case '"', '\'':
					f.quote = c
					f.state = fsQuote
				case '=':
					f.attrs++
				case '<':
					return false, errAt(ErrNotWellFormed, codeOther, off+int64(i-1), "'<' inside a tag")
				case '>':
					if f.prevSlash {
						if f.depth == 0 {
							f.pos, f.empty = i, true
							return true, nil
						}
					} else {
						f.depth++
						if f.rootOnly {
							f.pos = i
							return true, nil
						}
					}
					f.state = fsContent
					f.sawText = false
				}
				if f.state != fsStartTag {
					break
				}
				f.prevSlash = c == '/'
			}

		case fsQuote:
			j := bytes.IndexByte(p[i:end], f.quote)
			if j < 0 {
				i = end
				continue
			}
			i += j + 1
			f.state = fsStartTag
			f.prevSlash = false

		case fsEndTag:
			j := bytes.IndexByte(p[i:end], '>')
			if j < 0 {
				i = end
				continue
			}
			i += j + 1
			f.depth--
			if f.depth <= 0 {
				f.pos = i
				return true, nil
			}
			f.state = fsContent
			f.sawText = false

		case fsBang:
			c := p[i]
			if c != cdataOpen[f.k] {
				if f.k == 0 && c != '[' {
					// <!-- comment --> or <!DOCTYPE ...> and friends
					return false, errAt(ErrRestrictedXML, codeOther, off+int64(i-2), "comment or DTD")
				}
				return false, errAt(ErrNotWellFormed, codeOther, off+int64(i), "invalid CDATA section")
			}
			i++
			f.k++
			if f.k == len(cdataOpen) {
				if f.depth == 0 {
					return false, errAt(ErrNotWellFormed, codeRootText, off+int64(i), "character data outside an element")
				}
				f.state = fsCDATA
				f.k = 0
				f.texts++
			}

		case fsCDATA:
			for i < end {
				c := p[i]
				i++
				if c == ']' {
					f.k++
				} else if c == '>' && f.k >= 2 {
					f.state = fsContent
					f.sawText = false
					break
				} else {
					f.k = 0
				}
			}
		}
	}
	f.pos = i
	if i >= limit {
		return false, errAt(ErrTooLarge, codeOther, off+int64(f.start), "element larger than the limit")
	}
	return false, nil
}
