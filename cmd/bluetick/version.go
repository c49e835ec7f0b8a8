package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"text/tabwriter"
)

// version is the short version the server logs and announces (XEP-0092).
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.1.0-dev"
}

// printVersion is `bluetick version`: what an operator quotes in a bug
// report and checks after an upgrade — the module version, the commit it
// was built from, the Go release, and every dependency's version, as the
// Go toolchain recorded them in the binary.
func printVersion(w io.Writer, bi *debug.BuildInfo, ok bool) {
	fmt.Fprintf(w, "bluetick %s\n", version())
	if !ok {
		fmt.Fprintln(w, "  (no build information in this binary)")
		return
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  module\t%s %s\n", bi.Main.Path, bi.Main.Version)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(tw, "  commit\t%s\n", rev)
	}
	if at := settings["vcs.time"]; at != "" {
		fmt.Fprintf(tw, "  commit time\t%s\n", at)
	}
	fmt.Fprintf(tw, "  go\t%s", bi.GoVersion)
	if goos, goarch := settings["GOOS"], settings["GOARCH"]; goos != "" {
		fmt.Fprintf(tw, " %s/%s", goos, goarch)
	}
	fmt.Fprintln(tw)
	tw.Flush()
	fmt.Fprintln(w, "dependencies:")
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v += " => " + d.Replace.Path + " " + d.Replace.Version
		}
		fmt.Fprintf(tw, "  %s\t%s\n", d.Path, v)
	}
	tw.Flush()
}
