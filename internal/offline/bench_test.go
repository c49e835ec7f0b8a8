package offline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"bluetick/internal/store"
)

// BenchmarkApplyOffline: one batch of 256 inserts and the 256 deletes of
// the batch before, as the journal writes under a chat load where
// recipients ack after the commit.
func BenchmarkApplyOffline(b *testing.B) {
	st := openStore(&testing.T{}, "bob")
	ctx := context.Background()
	data := []byte("<message from='alice@localhost/pc' to='bob@localhost' type='chat' id='x'><body>0123456789012345678901234567890123456789012345678901234567890123</body><request xmlns='urn:xmpp:receipts'/></message>")
	var prev []int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ws := make([]*store.OfflineWrite, 0, 512)
		for k := 0; k < 256; k++ {
			m := store.OfflineMessage{StanzaID: fmt.Sprint(i, k), From: "alice@localhost/pc", Stored: time.Now(), Data: data}
			ws = append(ws, &store.OfflineWrite{User: "bob", Msg: &m})
		}
		for _, seq := range prev {
			ws = append(ws, &store.OfflineWrite{User: "bob", Seqs: []int64{seq}})
		}
		if err := st.ApplyOffline(ctx, ws); err != nil {
			b.Fatal(err)
		}
		prev = prev[:0]
		for _, w := range ws[:256] {
			prev = append(prev, w.Seq)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/row")
}
