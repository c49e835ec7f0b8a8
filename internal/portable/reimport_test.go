package portable

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bluetick/internal/store/sqlite"
)

// TestReimportUndelayedOffline: a file's offline message without a
// XEP-0203 delay gets one stamped at import time; importing the file
// again later must still recognise the message as already stored.
func TestReimportUndelayedOffline(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"))
	must(t, err)
	defer st.Close()
	doc := `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='bob' password='pw'><offline-messages>
<message xmlns='jabber:client' from='alice@example.com/pc' to='bob@example.com' type='chat' id='m1'><body>no delay</body></message>
<message xmlns='jabber:client' from='alice@example.com/pc' to='bob@example.com' type='chat' id='m2'><body>delayed</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-01-02T03:04:05Z'/></message>
</offline-messages></user></host></server-data>`
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []struct{ stored, dup int }{{2, 0}, {0, 2}} {
		clock = clock.Add(time.Hour) // a later run: another stamp for the undelayed one
		im := &Importer{St: st, Domain: "example.com", Now: func() time.Time { return clock }}
		must(t, Read(strings.NewReader(doc), Visitor{Account: func(a *Account) error { return im.Account(ctx, a) }}))
		if im.Sum.Offline != want.stored || im.Sum.OfflineDuplicate != want.dup {
			t.Fatalf("import %d: stored %d, already there %d; want %d, %d", i+1, im.Sum.Offline, im.Sum.OfflineDuplicate, want.stored, want.dup)
		}
	}
	msgs, err := st.OfflineMessages(ctx, "bob", 0)
	must(t, err)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Data), "2026-05-01T01:00:00.000Z") || !msgs[1].Stored.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("stored %d messages: %s / %v", len(msgs), msgs[0].Data, msgs[1].Stored)
	}
}
