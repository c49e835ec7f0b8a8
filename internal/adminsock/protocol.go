// Package adminsock is the local admin socket of a running server: the
// channel `bluetick status`, `user kick`, `user list --online`, `room
// list|destroy` and `announce` use (docs/operations.md).
//
// The socket is a Unix socket (mode 0600) in the data directory: file
// permissions are the authentication, and each connection's peer must
// also run as the server's user or as root (SO_PEERCRED). The protocol
// is JSON lines: the client writes one Request per line, the server
// answers each with one Response line. Version says which protocol a
// message speaks; a server answers a request of another version with an
// error naming both, so a CLI from another release fails clearly.
package adminsock

import (
	"encoding/json"
	"fmt"
	"time"
)

// Version is the protocol version this package speaks.
const Version = 1

// maxLine bounds one request or response line.
const maxLine = 1 << 20

// The operations.
const (
	OpStatus   = "status"   // → Status
	OpSessions = "sessions" // → SessionList
	OpKick     = "kick"     // JID (bare or full), Reason → Count
	OpRooms    = "rooms"    // → RoomList
	OpDestroy  = "destroy"  // JID (a room), Reason → Count
	OpAnnounce = "announce" // Subject, Text → Count
)

// Request is one command.
type Request struct {
	V       int    `json:"v"`
	Op      string `json:"op"`
	JID     string `json:"jid,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
}

// Response answers one Request: Result when it succeeded, Error when not.
type Response struct {
	V      int             `json:"v"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is a failed command: Code is one of the Code constants, Message
// says what went wrong and how to fix it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeNotFound   = "not-found"   // no such account, session or room
	CodeBadRequest = "bad-request" // malformed address, empty text, unknown op
	CodeElsewhere  = "elsewhere"   // cluster: the room lives on another node
	CodeVersion    = "version"     // the peer speaks another protocol version
	CodeInternal   = "internal"    // the server failed (store error, ...)
)

func (e *Error) Error() string { return e.Message }

// Status is the answer to OpStatus.
type Status struct {
	Version string    `json:"version"`
	Domain  string    `json:"domain"`
	DataDir string    `json:"data_dir"`
	Store   string    `json:"store"` // sqlite or postgres
	Started time.Time `json:"started"`
	// Uptime in seconds, as the server measured it.
	Uptime float64 `json:"uptime_seconds"`
	// Sessions on this node by transport: tcp, tls, websocket, bosh, and
	// none for the hibernated ones (waiting for a XEP-0198 resumption).
	Sessions    map[string]int `json:"sessions"`
	OnlineUsers int            `json:"online_users"` // accounts with a session on this node
	Accounts    int            `json:"accounts"`
	// Rooms are every group chat room (shared by a cluster's nodes);
	// RoomsHere and Occupants those whose live state is on this node.
	Rooms     int `json:"rooms"`
	RoomsHere int `json:"rooms_here"`
	Occupants int `json:"occupants"`
	// Node is this node's name in a cluster ("" alone); Nodes the live
	// nodes of the cluster.
	Node   string   `json:"node,omitempty"`
	Nodes  []string `json:"nodes,omitempty"`
	Memory Memory   `json:"memory"`
}

// Memory is the Go runtime's view of the process.
type Memory struct {
	HeapAlloc  uint64 `json:"heap_alloc_bytes"` // live heap objects
	HeapSys    uint64 `json:"heap_sys_bytes"`   // heap obtained from the OS
	Sys        uint64 `json:"sys_bytes"`        // everything obtained from the OS
	Goroutines int    `json:"goroutines"`
}

// SessionList is the answer to OpSessions: the sessions of this node
// (Node, in a cluster).
type SessionList struct {
	Node     string    `json:"node,omitempty"`
	Sessions []Session `json:"sessions"`
}

// Session is one client session of this node.
type Session struct {
	JID       string    `json:"jid"`
	Transport string    `json:"transport"` // tcp, tls, websocket, bosh; none while hibernated
	State     string    `json:"state"`     // active, inactive (XEP-0352), hibernated
	Addr      string    `json:"addr,omitempty"`
	Since     time.Time `json:"since"`
}

// RoomList is the answer to OpRooms: every room, asked of this node
// (Node, in a cluster).
type RoomList struct {
	Node  string `json:"node,omitempty"`
	Rooms []Room `json:"rooms"`
}

// Room is one group chat room.
type Room struct {
	JID        string `json:"jid"`
	Name       string `json:"name,omitempty"`
	Persistent bool   `json:"persistent"`
	Locked     bool   `json:"locked,omitempty"` // created, not configured yet
	Members    int    `json:"members"`
	// Occupants is known only where the room's live state is: Here false
	// (cluster: on Node) leaves it 0.
	Occupants int       `json:"occupants"`
	Here      bool      `json:"here"`
	Node      string    `json:"node,omitempty"`
	Created   time.Time `json:"created"`
}

// Count is the answer to OpKick, OpDestroy and OpAnnounce: how many
// sessions (or occupants) were reached, and what the command covered.
type Count struct {
	N int `json:"n"`
	// Scope is "cluster" when the command reached every node, "node"
	// when only this one.
	Scope string `json:"scope"`
	// Node is this node's name in a cluster; Elsewhere, for a room, the
	// node that did the work (then N is -1: counted there).
	Node      string `json:"node,omitempty"`
	Elsewhere string `json:"elsewhere,omitempty"`
}

// Errorf makes an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
