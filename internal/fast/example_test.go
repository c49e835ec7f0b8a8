package fast_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// Example shows the calls a SASL2 layer makes: the inline feature, a
// password login that requests a token, then a token login.
func Example() {
	dir, _ := os.MkdirTemp("", "fast-example")
	defer os.RemoveAll(dir)
	st, _ := sqlite.Open(filepath.Join(dir, "bluetick.db"))
	defer st.Close()
	ctx := context.Background()
	st.CreateUser(ctx, "juliet", nil)
	svc := fast.New(fast.Config{Fast: config.DefaultFast()}, st, nil)

	// Stream features on a TLS 1.3 connection that can compute
	// tls-exporter and tls-server-end-point.
	feature := svc.Feature(true, fast.CBTLSExporter, fast.CBTLSServerEndPoint)
	for _, m := range feature.Elements() {
		fmt.Println("offer", m.Text())
	}

	// 1. <authenticate mechanism='SCRAM-SHA-256'> with <request-token/>:
	// once the password checked out, before writing <success/>.
	auth := xmlstream.New("urn:xmpp:sasl:2", "authenticate", "mechanism", "SCRAM-SHA-256").
		Append(xmlstream.New(fast.NS, "request-token", "mechanism", fast.HTSHA256Expr))
	in, _ := fast.ParseInline(auth)
	client := fast.Client{AgentID: "d4565fa7-4d72-4749-b3d3-740edbf87770", Software: "Conversations", Device: "Pixel 9"}
	tok, _ := svc.TokenAfterSuccess(ctx, "juliet", client, in, nil) // nil: not a token login
	fmt.Println("success carries", tok.Element().Name, "for", tok.Mechanism)

	// 2. The next connection: <authenticate mechanism='HT-SHA-256-EXPR'>
	// with <fast/>; cbData is this connection's tls-exporter value.
	cbData := make([]byte, 32)
	auth = xmlstream.New("urn:xmpp:sasl:2", "authenticate", "mechanism", fast.HTSHA256Expr).
		Append(xmlstream.New(fast.NS, "fast"))
	in, _ = fast.ParseInline(auth)
	n, _ := svc.NewNegotiator(fast.HTSHA256Expr, fast.Params{
		AgentID: client.AgentID, CBData: cbData, Count: in.Count, Invalidate: in.Invalidate})
	initial := fast.InitialResponse("juliet", tok.Token, cbData) // what the client sends
	additional, done, err := n.Step(ctx, initial)
	fmt.Println("done", done, err, "user", n.Username(), "additional data", len(additional), "bytes")
	next, _ := svc.TokenAfterSuccess(ctx, n.Username(), client, in, n)
	fmt.Println("new token with this success:", next != nil)
	// Output:
	// offer HT-SHA-256-EXPR
	// offer HT-SHA-256-ENDP
	// offer HT-SHA-256-NONE
	// success carries token for HT-SHA-256-EXPR
	// done true <nil> user juliet additional data 32 bytes
	// new token with this success: false
}
