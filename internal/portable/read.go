package portable

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"bluetick/internal/xmlstream"
)

// Limits on what one file may make the reader hold. They bound memory and
// work whatever a file contains; real exports stay far below them.
const (
	// MaxAccountBytes bounds the text and attributes of one <user/> or
	// <room/> subtree: its offline messages, vCard and PEP items, all
	// held at once while the account is imported.
	MaxAccountBytes = 64 << 20
	// maxDepth bounds element nesting inside one account.
	maxDepth = 64
	// maxIncludes bounds XInclude nesting (main file, host file, user
	// file is three).
	maxIncludes = 8
)

// Visitor receives what a file holds, in file order. A non-nil error from
// it stops the reading and is returned.
type Visitor struct {
	Account func(*Account) error
	Room    func(host string, r *Room) error
	// Notice is told of what is read but not imported outside accounts
	// (unknown elements, hosts without a jid); may be nil.
	Notice func(msg string)
}

// ReadFile reads a XEP-0227 file, following its XIncludes (relative hrefs
// only, resolved against the including file, never leaving its directory
// tree), and hands each account and room to v.
func ReadFile(path string, v Visitor) error {
	r := &reader{v: v}
	return r.file(path, filepath.Dir(path), "", 0)
}

// Read reads one XEP-0227 document from in. XIncludes are refused: there
// is no directory to resolve them against.
func Read(in io.Reader, v Visitor) error {
	r := &reader{v: v}
	return r.doc(in, "", "", "", 0)
}

type reader struct {
	v Visitor
}

func (r *reader) notice(format string, args ...any) {
	if r.v.Notice != nil {
		r.v.Notice(fmt.Sprintf(format, args...))
	}
}

func (r *reader) file(path, root, host string, level int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := r.doc(bufio.NewReaderSize(f, 64<<10), path, root, host, level); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// doc walks one document. The containers (<server-data/>, <host/>) are
// entered; a <user/> or <room/> is read whole and converted; an include is
// read in its place with the current host.
func (r *reader) doc(in io.Reader, path, root, host string, level int) error {
	d := xml.NewDecoder(in)
	d.Strict = true
	type frame struct{ host string }
	var stack []frame
	sawRoot := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !sawRoot {
				return errors.New("no XML element in the file")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %v", lineOf(d), err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			sawRoot = true
			cur := host
			if len(stack) > 0 {
				cur = stack[len(stack)-1].host
			}
			switch {
			case isPIE(t.Name.Space) && t.Name.Local == "server-data":
				stack = append(stack, frame{cur})
			case isPIE(t.Name.Space) && t.Name.Local == "host":
				h := attr(t, "jid")
				if h == "" {
					return fmt.Errorf("line %d: <host/> without a jid", lineOf(d))
				}
				stack = append(stack, frame{h})
			case isPIE(t.Name.Space) && t.Name.Local == "user":
				if cur == "" {
					return fmt.Errorf("line %d: <user/> outside any <host jid=''/>", lineOf(d))
				}
				el, err := subtree(d, t)
				if err != nil {
					return fmt.Errorf("line %d: user %q: %v", lineOf(d), attr(t, "name"), err)
				}
				acc, err := parseAccount(cur, el)
				if err != nil {
					return fmt.Errorf("line %d: %v", lineOf(d), err)
				}
				if r.v.Account != nil {
					if err := r.v.Account(acc); err != nil {
						return err
					}
				}
			case t.Name.Space == NSRooms && t.Name.Local == "room":
				el, err := subtree(d, t)
				if err != nil {
					return fmt.Errorf("line %d: room %q: %v", lineOf(d), attr(t, "jid"), err)
				}
				room, err := parseRoom(el)
				if err != nil {
					return fmt.Errorf("line %d: %v", lineOf(d), err)
				}
				if r.v.Room != nil {
					if err := r.v.Room(cur, room); err != nil {
						return err
					}
				}
			case t.Name.Space == NSXInclude && t.Name.Local == "include":
				if err := d.Skip(); err != nil {
					return err
				}
				if err := r.include(t, path, root, cur, level); err != nil {
					return err
				}
			default:
				if len(stack) == 0 {
					return fmt.Errorf("the root element is {%s}%s, not a XEP-0227 <server-data/>, <host/> or <user/>", t.Name.Space, t.Name.Local)
				}
				r.notice("ignored: {%s}%s in host %q (not part of what Bluetick imports)", t.Name.Space, t.Name.Local, cur)
				if err := d.Skip(); err != nil {
					return err
				}
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
}

// include reads the file an <xi:include/> names, in place.
func (r *reader) include(t xml.StartElement, path, root, host string, level int) error {
	href := attr(t, "href")
	switch {
	case path == "":
		return fmt.Errorf("<xi:include href=%q/> in a document read from a stream: give the file's path instead", href)
	case href == "":
		return errors.New("<xi:include/> without href")
	case attr(t, "parse") != "" && attr(t, "parse") != "xml", attr(t, "xpointer") != "":
		return fmt.Errorf("<xi:include href=%q/>: only plain XML includes are supported (no parse='text', no xpointer)", href)
	case level+1 >= maxIncludes:
		return fmt.Errorf("<xi:include href=%q/>: includes nested more than %d deep", href, maxIncludes)
	}
	target := filepath.Join(filepath.Dir(path), filepath.FromSlash(href))
	rel, err := filepath.Rel(root, target)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("<xi:include href=%q/>: only files under %s are read", href, root)
	}
	return r.file(target, root, host, level+1)
}

func isPIE(ns string) bool { return ns == NS || ns == NSLegacy }

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func lineOf(d *xml.Decoder) int {
	line, _ := d.InputPos()
	return line
}

// subtree reads the rest of the element start opened into an
// xmlstream.Element with resolved namespaces, within MaxAccountBytes and
// maxDepth.
func subtree(d *xml.Decoder, start xml.StartElement) (*xmlstream.Element, error) {
	size := 0
	root := element(start, &size)
	stack := []*xmlstream.Element{root}
	for len(stack) > 0 {
		if size > MaxAccountBytes {
			return nil, fmt.Errorf("larger than %d MiB", MaxAccountBytes>>20)
		}
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("elements nested more than %d deep", maxDepth)
			}
			el := element(t, &size)
			top.Append(el)
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			size += len(t)
			top.AppendText(string(t))
		}
	}
	return root, nil
}

// element converts a start tag. Namespace declarations are folded into
// Space by the decoder; xml:lang keeps its prefix; other prefixed
// attributes (exporters' private extensions) are dropped.
func element(t xml.StartElement, size *int) *xmlstream.Element {
	el := &xmlstream.Element{Space: t.Name.Space, Name: t.Name.Local}
	*size += len(t.Name.Space) + len(t.Name.Local)
	for _, a := range t.Attr {
		*size += len(a.Name.Local) + len(a.Value)
		switch {
		case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
		case a.Name.Space == xmlstream.NSXML || a.Name.Space == "xml":
			el.Attrs = append(el.Attrs, xmlstream.Attr{Name: "xml:" + a.Name.Local, Value: a.Value})
		case a.Name.Space == "":
			el.Attrs = append(el.Attrs, xmlstream.Attr{Name: a.Name.Local, Value: a.Value})
		}
	}
	return el
}
