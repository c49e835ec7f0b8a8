package portable

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// ExportSummary is what an export wrote.
type ExportSummary struct {
	Users, Contacts, VCards, Private, PEPNodes, PEPItems, Offline, Rooms int
	Files                                                                []string
	Skipped                                                              []string
}

const xmlDecl = "<?xml version='1.0' encoding='UTF-8'?>\n"

// Export writes the whole server held in st (accounts of domain and the
// group chat rooms) as XEP-0227. With dir false, dest is one file; with
// dir true, dest is a directory laid out as XEP-0227 §5.1 suggests:
// server.xml includes DOMAIN.xml, which includes DOMAIN/NAME.xml per
// account. Files are created mode 0600 (they hold credentials, §6) and
// appear complete or not at all (written aside, then renamed).
func Export(ctx context.Context, st store.Store, domain, dest string, dir bool) (ExportSummary, error) {
	var sum ExportSummary
	users, err := st.ListUsers(ctx)
	if err != nil {
		return sum, err
	}
	rooms, err := st.ListRooms(ctx)
	if err != nil {
		return sum, err
	}
	count := func(a *Account) {
		sum.Users++
		for _, it := range a.Roster {
			if it.InRoster {
				sum.Contacts++
			}
		}
		if a.VCard != nil {
			sum.VCards++
		}
		sum.Private += len(a.Private)
		sum.PEPNodes += len(a.PEP)
		for _, n := range a.PEP {
			sum.PEPItems += len(n.Items)
		}
		sum.Offline += len(a.Offline)
		for _, s := range a.Skipped {
			sum.Skipped = append(sum.Skipped, a.Name+": "+s)
		}
	}
	writeRooms := func(w *bufio.Writer) error {
		for _, r := range rooms {
			room, err := readRoom(ctx, st, r)
			if err != nil {
				return err
			}
			w.Write(xmlstream.Append(nil, roomElement(room), NS))
			w.WriteString("\n")
			sum.Rooms++
		}
		return nil
	}
	if !dir {
		err := writeAtomic(dest, func(w *bufio.Writer) error {
			w.WriteString(xmlDecl)
			fmt.Fprintf(w, "<server-data xmlns='%s'>\n<host jid='%s'>\n", NS, escape(domain))
			for _, u := range users {
				a, err := readAccount(ctx, st, domain, u)
				if err != nil {
					return fmt.Errorf("account %s: %w", u, err)
				}
				count(a)
				w.Write(xmlstream.Append(nil, accountElement(a), NS))
				w.WriteString("\n")
			}
			if err := writeRooms(w); err != nil {
				return err
			}
			w.WriteString("</host>\n</server-data>\n")
			return nil
		})
		sum.Files = []string{dest}
		return sum, err
	}
	if err := os.MkdirAll(filepath.Join(dest, domain), 0o700); err != nil {
		return sum, err
	}
	hostFile := domain + ".xml"
	var includes []string
	for _, u := range users {
		a, err := readAccount(ctx, st, domain, u)
		if err != nil {
			return sum, fmt.Errorf("account %s: %w", u, err)
		}
		count(a)
		rel := domain + "/" + userFile(u)
		err = writeAtomic(filepath.Join(dest, filepath.FromSlash(rel)), func(w *bufio.Writer) error {
			w.WriteString(xmlDecl)
			w.Write(xmlstream.Append(nil, accountElement(a), ""))
			w.WriteString("\n")
			return nil
		})
		if err != nil {
			return sum, err
		}
		includes = append(includes, rel)
	}
	err = writeAtomic(filepath.Join(dest, hostFile), func(w *bufio.Writer) error {
		w.WriteString(xmlDecl)
		fmt.Fprintf(w, "<host xmlns='%s' xmlns:xi='%s' jid='%s'>\n", NS, NSXInclude, escape(domain))
		for _, rel := range includes {
			fmt.Fprintf(w, "<xi:include href='%s'/>\n", escape(rel))
		}
		if err := writeRooms(w); err != nil {
			return err
		}
		w.WriteString("</host>\n")
		return nil
	})
	if err != nil {
		return sum, err
	}
	main := filepath.Join(dest, "server.xml")
	err = writeAtomic(main, func(w *bufio.Writer) error {
		w.WriteString(xmlDecl)
		fmt.Fprintf(w, "<server-data xmlns='%s' xmlns:xi='%s'>\n<xi:include href='%s'/>\n</server-data>\n", NS, NSXInclude, escape(hostFile))
		return nil
	})
	sum.Files = []string{main, filepath.Join(dest, hostFile), filepath.Join(dest, domain) + "/"}
	return sum, err
}

// userFile names an account's file: NAME.xml, or a hash for names too
// long for a file system or that a file name cannot hold as they are.
func userFile(name string) string {
	if len(name) <= 200 && name != "." && name != ".." {
		return name + ".xml"
	}
	h := sha256.Sum256([]byte(name))
	return "user-" + hex.EncodeToString(h[:16]) + ".xml"
}

// escape makes s safe in a single-quoted attribute.
func escape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeAtomic writes path through a temporary file in its directory,
// synced, then renamed over it.
func writeAtomic(path string, fill func(w *bufio.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename: nothing there
	w := bufio.NewWriterSize(f, 256<<10)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
