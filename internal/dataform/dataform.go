// Package dataform reads and writes XEP-0004 data forms (jabber:x:data),
// as far as the server needs them: the fields of a submitted form with
// their values, and simple forms and results to send.
package dataform

import (
	"errors"

	"bluetick/internal/xmlstream"
)

// NS is the data forms namespace.
const NS = "jabber:x:data"

// Limits on what Parse accepts: forms from clients are small, and a
// hostile one must not cost more than its stanza size already does.
const (
	maxFields = 64
	maxValues = 16
)

// Field is one field of a form.
type Field struct {
	Var    string
	Type   string // text-single, hidden, list-single, ... ("" when absent)
	Label  string
	Values []string
	// Required and Options are written by Element (<required/>, the
	// <option/>s of a list field); Parse does not read them.
	Required bool
	Options  []Option
}

// Option is one choice of a list field.
type Option struct {
	Label, Value string
}

// Form is a parsed or built data form.
type Form struct {
	Type  string // form, submit, cancel or result ("" if the sender left it out)
	Title string
	// Instructions are written by Element; Parse does not read them.
	Instructions string
	Fields       []Field
}

// Errors of Parse.
var (
	ErrNotForm     = errors.New("dataform: not a jabber:x:data <x/>")
	ErrBadType     = errors.New("dataform: type must be form, submit, cancel or result")
	ErrTooLarge    = errors.New("dataform: too many fields or values")
	ErrDuplicate   = errors.New("dataform: a field var appears twice")
	ErrMissingVar  = errors.New("dataform: a field of a submitted form has no var")
	ErrMultiValued = errors.New("dataform: a single-valued field has several values")
)

// Parse reads an <x xmlns='jabber:x:data'/> element.
func Parse(x *xmlstream.Element) (*Form, error) {
	if x == nil || x.Space != NS || x.Name != "x" {
		return nil, ErrNotForm
	}
	f := &Form{Type: x.Attr("type")}
	switch f.Type {
	case "form", "submit", "cancel", "result":
	case "":
		// XEP-0004 requires the type, but XEP-0357's own examples omit
		// it on notification and publish-options forms; callers that
		// care check Type.
	default:
		return nil, ErrBadType
	}
	seen := map[string]bool{}
	for _, c := range x.Elements() {
		if c.Space != NS {
			continue
		}
		switch c.Name {
		case "title":
			f.Title = c.Text()
		case "field":
			if len(f.Fields) >= maxFields {
				return nil, ErrTooLarge
			}
			fl := Field{Var: c.Attr("var"), Type: c.Attr("type"), Label: c.Attr("label")}
			if fl.Var == "" && f.Type == "submit" {
				return nil, ErrMissingVar
			}
			if fl.Var != "" {
				if seen[fl.Var] {
					return nil, ErrDuplicate
				}
				seen[fl.Var] = true
			}
			for _, v := range c.Elements() {
				if v.Space == NS && v.Name == "value" {
					if len(fl.Values) >= maxValues {
						return nil, ErrTooLarge
					}
					fl.Values = append(fl.Values, v.Text())
				}
			}
			if len(fl.Values) > 1 && !multi(fl.Type) {
				return nil, ErrMultiValued
			}
			f.Fields = append(f.Fields, fl)
		}
	}
	return f, nil
}

func multi(typ string) bool {
	return typ == "list-multi" || typ == "jid-multi" || typ == "text-multi"
}

// FormType is the value of the hidden FORM_TYPE field (XEP-0068), or "".
func (f *Form) FormType() string { return f.Get("FORM_TYPE") }

// Get returns the first value of the field var, or "".
func (f *Form) Get(name string) string {
	for _, fl := range f.Fields {
		if fl.Var == name && len(fl.Values) > 0 {
			return fl.Values[0]
		}
	}
	return ""
}

// Has reports whether the form has the field var.
func (f *Form) Has(name string) bool {
	for _, fl := range f.Fields {
		if fl.Var == name {
			return true
		}
	}
	return false
}

// Values returns the single-valued fields other than FORM_TYPE as a map.
func (f *Form) Values() map[string]string {
	m := map[string]string{}
	for _, fl := range f.Fields {
		if fl.Var != "" && fl.Var != "FORM_TYPE" && len(fl.Values) > 0 {
			m[fl.Var] = fl.Values[0]
		}
	}
	return m
}

// New starts a form of type typ; formType, if not empty, becomes the hidden
// FORM_TYPE field.
func New(typ, formType string) *Form {
	f := &Form{Type: typ}
	if formType != "" {
		f.Fields = append(f.Fields, Field{Var: "FORM_TYPE", Type: "hidden", Values: []string{formType}})
	}
	return f
}

// Add appends a field and returns the form.
func (f *Form) Add(name, typ, label string, values ...string) *Form {
	f.Fields = append(f.Fields, Field{Var: name, Type: typ, Label: label, Values: values})
	return f
}

// Element renders the form.
func (f *Form) Element() *xmlstream.Element {
	x := xmlstream.New(NS, "x", "type", f.Type) // an empty Type writes no attribute
	if f.Title != "" {
		x.Append(xmlstream.New(NS, "title").AppendText(f.Title))
	}
	if f.Instructions != "" {
		x.Append(xmlstream.New(NS, "instructions").AppendText(f.Instructions))
	}
	for _, fl := range f.Fields {
		e := xmlstream.New(NS, "field", "var", fl.Var, "type", fl.Type, "label", fl.Label)
		if fl.Required {
			e.Append(xmlstream.New(NS, "required"))
		}
		for _, v := range fl.Values {
			e.Append(xmlstream.New(NS, "value").AppendText(v))
		}
		for _, o := range fl.Options {
			e.Append(xmlstream.New(NS, "option", "label", o.Label).Append(xmlstream.New(NS, "value").AppendText(o.Value)))
		}
		x.Append(e)
	}
	return x
}
