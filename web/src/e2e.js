// What the rest of the app needs to know of end-to-end encryption, kept
// apart from the OMEMO code (omemo.js, with the Signal library loaded
// lazily) so that media.js, groups.js and the UI can ask without it.
//
//   active(chat)  true when messages to this chat (a bare JID) are sent
//                 OMEMO-encrypted, so that media must be encrypted too
//                 (XEP-0454) and nothing of the content may go in the clear.
//   settled()     resolves when every stanza received so far is decrypted
//                 (archive pages wait for it before they are read).
//
// A received <message/> element that was encrypted carries e2e (set by
// omemo.js): {ok: true, jid, device} or {ok: false, why, jid, device};
// a stored message copies it as m.e2e (its lock, or why it is unreadable).
export const e2e = { active: (_chat) => false, settled: () => Promise.resolve() };
