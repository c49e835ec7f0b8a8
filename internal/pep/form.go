package pep

import (
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// form is a submitted XEP-0004 data form: field values by var. Only what
// the service reads is kept; labels, options and descriptions are the
// requester's business.
type form struct {
	typ    string
	fields map[string][]string
	order  []string
}

// parseForm reads <x xmlns='jabber:x:data'/>. A field without a var (other
// than fixed) or given twice is bad-request: such a form is ambiguous.
func parseForm(x *xmlstream.Element) (*form, error) {
	if x == nil || x.Space != NSData || x.Name != "x" {
		return nil, stanza.NewError("bad-request", "a jabber:x:data form is required")
	}
	f := &form{typ: x.Attr("type"), fields: map[string][]string{}}
	for _, fl := range x.Elements() {
		if fl.Space != NSData || fl.Name != "field" {
			continue
		}
		v := fl.Attr("var")
		if v == "" {
			if fl.Attr("type") == "fixed" {
				continue
			}
			return nil, stanza.NewError("bad-request", "form field without a var")
		}
		if _, dup := f.fields[v]; dup {
			return nil, stanza.NewError("bad-request", "form field "+v+" given twice")
		}
		vals := []string{}
		for _, val := range fl.Elements() {
			if val.Space == NSData && val.Name == "value" {
				vals = append(vals, val.Text())
			}
		}
		f.fields[v] = vals
		f.order = append(f.order, v)
	}
	return f, nil
}

// formType is the FORM_TYPE value, or "".
func (f *form) formType() string {
	if v := f.fields["FORM_TYPE"]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// field appends a field to a form being built.
func field(x *xmlstream.Element, typ, v string, values ...string) *xmlstream.Element {
	fl := xmlstream.New(NSData, "field", "var", v, "type", typ)
	for _, val := range values {
		fl.Append(xmlstream.New(NSData, "value").AppendText(val))
	}
	x.Append(fl)
	return fl
}

// listField appends a list field with its options.
func listField(x *xmlstream.Element, typ, v string, options []string, values ...string) {
	fl := field(x, typ, v, values...)
	for _, o := range options {
		fl.Append(xmlstream.New(NSData, "option").Append(xmlstream.New(NSData, "value").AppendText(o)))
	}
}
