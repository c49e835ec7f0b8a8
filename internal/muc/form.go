package muc

import (
	"strconv"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Form is a parsed XEP-0004 data form: its type and the values of each
// field, by var, in document order of the values.
type Form struct {
	Type   string
	Fields map[string][]string
}

// Limits of a submitted form: a room form has a dozen fields; anything
// much bigger is abuse.
const (
	maxFormFields = 64
	maxFormValues = 256
)

// ParseForm reads a <x xmlns='jabber:x:data'/>. It never panics; a form
// that breaks XEP-0004's rules is a bad-request error.
func ParseForm(x *xmlstream.Element) (*Form, error) {
	if x == nil || x.Space != NSData || x.Name != "x" {
		return nil, stanza.NewError("bad-request", "expected a jabber:x:data form")
	}
	f := &Form{Type: x.Attr("type"), Fields: map[string][]string{}}
	switch f.Type {
	case "form", "submit", "cancel", "result":
	default:
		return nil, stanza.NewError("bad-request", "data form type must be form, submit, cancel or result")
	}
	values := 0
	for _, c := range x.Elements() {
		if c.Space != NSData || c.Name != "field" {
			continue
		}
		v := c.Attr("var")
		if v == "" {
			if f.Type == "submit" {
				return nil, stanza.NewError("bad-request", "a submitted field needs a var")
			}
			continue
		}
		if _, dup := f.Fields[v]; dup {
			return nil, stanza.NewError("bad-request", "field "+strconv.Quote(v)+" appears twice")
		}
		if len(f.Fields) >= maxFormFields {
			return nil, stanza.NewError("policy-violation", "too many form fields")
		}
		vals := []string{}
		for _, vc := range c.Elements() {
			if vc.Space == NSData && vc.Name == "value" {
				values++
				if values > maxFormValues {
					return nil, stanza.NewError("policy-violation", "too many form values")
				}
				vals = append(vals, vc.Text())
			}
		}
		f.Fields[v] = vals
	}
	return f, nil
}

// FormType is the FORM_TYPE hidden field (XEP-0068), or "".
func (f *Form) FormType() string { return f.Value("FORM_TYPE") }

// Value is a field's first value, or "".
func (f *Form) Value(v string) string {
	if vals := f.Fields[v]; len(vals) > 0 {
		return vals[0]
	}
	return ""
}

// Has reports whether the field was submitted.
func (f *Form) Has(v string) bool { _, ok := f.Fields[v]; return ok }

// Bool reads a boolean field (XEP-0004 §3.3: "0", "1", "false", "true").
func (f *Form) Bool(v string) (bool, error) {
	switch f.Value(v) {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return false, stanza.NewError("not-acceptable", "field "+v+" must be a boolean")
}

// formBuilder builds forms the service sends.
type formBuilder struct{ x *xmlstream.Element }

func newForm(typ, formType, title string) *formBuilder {
	b := &formBuilder{x: xmlstream.New(NSData, "x", "type", typ)}
	if title != "" {
		b.x.Append(xmlstream.New(NSData, "title").AppendText(title))
	}
	b.field("FORM_TYPE", "hidden", "", formType)
	return b
}

func (b *formBuilder) field(v, typ, label string, values ...string) *xmlstream.Element {
	f := xmlstream.New(NSData, "field", "var", v, "type", typ, "label", label)
	for _, val := range values {
		f.Append(xmlstream.New(NSData, "value").AppendText(val))
	}
	b.x.Append(f)
	return f
}

func (b *formBuilder) boolean(v, label string, on bool) {
	val := "0"
	if on {
		val = "1"
	}
	b.field(v, "boolean", label, val)
}

func (b *formBuilder) list(v, label, value string, options ...string) {
	f := b.field(v, "list-single", label, value)
	for i := 0; i+1 < len(options); i += 2 {
		f.Append(xmlstream.New(NSData, "option", "label", options[i]).Append(xmlstream.New(NSData, "value").AppendText(options[i+1])))
	}
}
