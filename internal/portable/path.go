package portable

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// ReadPath reads a file, or every main file of a directory: the *.xml
// files directly in it whose root is <server-data/> (Prosody's migrator
// writes one per account, ejabberd one per export; Bluetick's server.xml).
// Files whose root is <host/> or <user/> are only read through the
// includes of a main file, so nothing is read twice.
func ReadPath(path string, v Visitor) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return ReadFile(path, v)
	}
	names, err := filepath.Glob(filepath.Join(path, "*.xml"))
	if err != nil {
		return err
	}
	slices.Sort(names)
	n := 0
	for _, name := range names {
		root, err := rootName(name)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if isPIE(root.Space) && root.Local == "server-data" {
			n++
			if err := ReadFile(name, v); err != nil {
				return err
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no XEP-0227 main file in it (an .xml file whose root is <server-data xmlns='%s'/>)", path, NS)
	}
	return nil
}

// rootName is the name of a file's root element.
func rootName(path string) (xml.Name, error) {
	f, err := os.Open(path)
	if err != nil {
		return xml.Name{}, err
	}
	defer f.Close()
	d := xml.NewDecoder(io.LimitReader(f, 1<<20))
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.Name{}, fmt.Errorf("no root element in its first MiB: %v", err)
		}
		if t, ok := tok.(xml.StartElement); ok {
			return t.Name, nil
		}
	}
}
