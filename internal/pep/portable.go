package pep

import "bluetick/internal/xmlstream"

// Node configurations in XEP-0227 files (package portable): the file
// carries a node's configuration as the node_config form an owner would
// submit, which is what Prosody's exporter writes, so the stored JSON
// never leaves this package.

// ExportNodeConfig renders a stored node configuration as a submitted
// node_config form.
func ExportNodeConfig(raw []byte) *xmlstream.Element {
	return unmarshalConfig(raw).form("submit")
}

// ImportNodeConfig turns the node_config form of an imported node into the
// stored configuration and the number of items the node keeps. A node
// without a form gets the defaults of a new node. Unlike an owner's
// submission, the form is read leniently, field by field: exporters send
// empty fields and options this service does not have, and refusing the
// whole node would lose its items. Fields left out are named in skipped;
// the access model is kept whenever it is one of the four this service
// has, and otherwise falls back to the default (presence), never wider.
func ImportNodeConfig(x *xmlstream.Element) (raw []byte, keep int, skipped []string) {
	c := defaultConfig()
	if x != nil {
		if f, err := parseForm(x); err != nil {
			skipped = append(skipped, "the whole form ("+err.Error()+")")
		} else {
			for _, name := range f.order {
				vals := f.fields[name]
				if name == "FORM_TYPE" || len(vals) == 0 || (len(vals) == 1 && vals[0] == "") {
					continue
				}
				s, err := parseSetting(name, vals)
				if err != nil {
					skipped = append(skipped, name)
					continue
				}
				s.apply(&c)
			}
		}
	}
	return c.marshal(), c.keep(), skipped
}

// NodeKeep is how many items a stored node configuration keeps.
func NodeKeep(raw []byte) int { return unmarshalConfig(raw).keep() }
