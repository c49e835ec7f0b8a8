package web

import (
	"slices"
	"strings"
	"testing"
)

// TestActions: reply, edit, delete for everyone and reactions between two
// browsers, each seen on the other side and after a reload; forged ones
// from a third party ignored. TestScale: a 10,000-message chat windowed.
func TestActions(t *testing.T) {
	t.Run("actions", func(t *testing.T) { t.Parallel(); messageActions(t) })
	t.Run("scale", func(t *testing.T) { t.Parallel(); scale(t) })
}

type shown struct {
	id, dir, text, quote string
	edited, deleted      bool
	reactions            []string
}

func shownOf(v any) shown {
	m, _ := v.(map[string]any)
	f := fact(m)
	return shown{f.str("id"), f.str("dir"), f.str("text"), f.str("quote"), f.boolean("edited"), f.boolean("deleted"), f.strs("reactions")}
}

func shownList(v any) []shown {
	l, _ := v.([]any)
	var out []shown
	for _, x := range l {
		out = append(out, shownOf(x))
	}
	return out
}

func find(l []shown, f func(shown) bool) (shown, bool) {
	for _, s := range l {
		if f(s) {
			return s, true
		}
	}
	return shown{}, false
}

func messageActions(t *testing.T) {
	fs := run(t, "actions", nil, "alice", "bob", "carol")

	r := fs.get(t, "reply")
	if r.str("keyboard_focus") != "Reply" {
		t.Errorf("the menu from the keyboard: ArrowDown ×6 focused %q, want Reply", r.str("keyboard_focus"))
	}
	for _, side := range []string{"alice", "bob"} {
		if s := shownOf(r[side]); s.text != "hi alice, replying" || s.quote != "hello bob" {
			t.Errorf("the reply in %s's page: %+v, want the text without the fallback and the quote \"hello bob\"", side, s)
		}
	}
	if w := r.str("wire_body"); !strings.HasPrefix(w, "&gt; hello bob\n") || !strings.HasSuffix(w, "hi alice, replying") {
		t.Errorf("the reply's body on the wire %q: want the XEP-0428 fallback quote, then the text", w)
	}

	e := fs.get(t, "edit")
	if e.str("prefilled") != "see you at 5" {
		t.Errorf("Edit put %q in the composer, want the message", e.str("prefilled"))
	}
	for _, side := range []string{"alice", "bob"} {
		l := shownList(e[side])
		if len(l) != 1 || l[0].text != "see you at 6" || !l[0].edited {
			t.Errorf("the edit in %s's page: %+v, want one message \"see you at 6\", edited", side, l)
		}
	}
	if !e.boolean("chat_still_open") {
		t.Errorf("Escape in the actions menu closed the chat too")
	}
	if e.num("edit_on_older") != 0 || e.num("bob_can_delete_alices") != 0 {
		t.Errorf("Edit offered on an older message (%v) or Delete on someone else's (%v)", e.num("edit_on_older"), e.num("bob_can_delete_alices"))
	}

	d := fs.get(t, "delete")
	for _, side := range []string{"alice", "bob"} {
		if s := shownOf(d[side]); !s.deleted || s.text != "🚫 This message was deleted" {
			t.Errorf("deleted for everyone, %s's page shows %+v", side, s)
		}
	}
	if d.boolean("bob_has_text") {
		t.Errorf("bob's page still shows the deleted text")
	}

	re := fs.get(t, "reactions")
	if got := re.strs("alice_two"); !slices.Equal(got, []string{"👍2*"}) {
		t.Errorf("alice and bob both 👍: alice's page shows %q, want 👍 2 (hers)", got)
	}
	if got := re.strs("bob_after_toggle"); !slices.Equal(got, []string{"👍1*"}) {
		t.Errorf("alice took her 👍 back: bob's page shows %q, want only his", got)
	}
	if got := re.strs("bob_heart"); !slices.Equal(got, []string{"❤️1"}) {
		t.Errorf("alice's ❤️ on bob's reply: bob's page shows %q", got)
	}

	if got := re.strs("joined"); !slices.Equal(got, []string{"❤️2*"}) {
		t.Errorf("bob clicked alice's ❤️ chip: alice's page shows %q, want ❤️ 2 (hers among them)", got)
	}

	fg := fs.get(t, "forged")
	if s := shownOf(fg["target"]); s.text != "see you at 6" || s.deleted {
		t.Errorf("after carol's forged retraction and correction, bob's page shows alice's message as %+v", s)
	}
	if p := fg.str("carol_preview"); p != "carol was here" {
		t.Errorf("carol's chat in bob's list shows %q, want only her plain message", p)
	}

	ar := fs.get(t, "after-reload")
	for _, side := range []string{"alice", "bob"} {
		l := shownList(ar[side])
		check := func(what string, f func(shown) bool) {
			if _, ok := find(l, f); !ok {
				t.Errorf("after a reload %s's page lacks %s: %+v", side, what, l)
			}
		}
		check("the reply with its quote", func(s shown) bool { return s.text == "hi alice, replying" && s.quote == "hello bob" })
		check("the edit", func(s shown) bool {
			return s.text == "see you at 6" && s.edited && slices.Equal(s.reactions, []string{"👍1" + map[bool]string{true: "*"}[side == "bob"]})
		})
		check("the deleted message", func(s shown) bool { return s.deleted })
		check("the ❤️", func(s shown) bool {
			return s.text == "hi alice, replying" && len(s.reactions) == 1 && strings.HasPrefix(s.reactions[0], "❤️2")
		})
		if _, ok := find(l, func(s shown) bool { return s.text == "see you at 5" || s.text == "oops, wrong chat" }); ok {
			t.Errorf("after a reload %s's page shows an edited or deleted text: %+v", side, l)
		}
	}
}

func scale(t *testing.T) {
	fs := run(t, "scale", nil, "alice")
	f := fs.get(t, "scale")
	t.Logf("10,000-message chat: %s", f)
	if n := f.num("dom_open"); n == 0 || n > 300 {
		t.Errorf("opening the chat put %v message elements in the DOM, want some and at most 300", n)
	}
	if n := f.num("dom_max"); n > 300 {
		t.Errorf("scrolling put up to %v message elements in the DOM, want at most 300", n)
	}
	if f.str("last_shown") != "message 9999" {
		t.Errorf("the chat opened on %q, want the last message", f.str("last_shown"))
	}
	// Ten scrolls to the top, a page of 80 older messages each.
	if f.num("oldest_seen") > f.num("oldest_open")-500 {
		t.Errorf("scrolling to the top ten times loaded too little: oldest %v at open, %v after", f.num("oldest_open"), f.num("oldest_seen"))
	}
	if !f.boolean("newer_reloaded") {
		t.Errorf("going back to the latest messages did not show message 9999")
	}
	u := fs.get(t, "unread")
	if u.str("separator") != "3 unread messages" || u.str("after") != "unread 1" {
		t.Errorf("unread separator: %s", u)
	}
	s := fs.get(t, "search")
	if s.num("hits") != 11 || s.str("count") != "1 of 11" || s.str("highlighted") != "message 4249" || s.str("mark") != "message 424" {
		t.Errorf("search for %q (424 and 4240–4249, newest first): %s", "message 424", s)
	}
	em := fs.get(t, "emoji")
	if em.str("composer") != "hey 😂" {
		t.Errorf("emoji picker: the composer holds %q", em.str("composer"))
	}
}
