"""A deliberately small, blocking XMPP client on plain sockets.

It exists for what real client libraries will not do on purpose: send
malformed XML, send an oversize stanza, drop the TCP connection without
closing the stream. It speaks STARTTLS, direct TLS (certificates are not
verified: bluetick's is self-signed), SCRAM-SHA-256/SCRAM-SHA-1
(RFC 5802/7677) and resource binding, and parses what the server sends with
xml.etree's pull parser, one top-level element at a time.

Every byte sent and every element received is logged to stderr, so that a
failing Go test can show the XML that was exchanged.
"""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAM_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
NS_SM = "urn:xmpp:sm:3"


def log(*args):
    print("[raw %.3f]" % time.monotonic(), *args, file=sys.stderr, flush=True)


def short(data, limit=600):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if len(data) > limit:
        return data[:limit] + "...(%d bytes)" % len(data)
    return data


XML_NS = "http://www.w3.org/XML/1998/namespace"


def tostr(el, parent_ns=None):
    """Serialize el the way XMPP peers write it: default xmlns where the
    namespace changes, no ns0: prefixes."""
    tag_ns, name = ns(el.tag), local(el.tag)
    if tag_ns == NS_STREAM:
        name, tag_ns = "stream:" + name, parent_ns
    out = "<" + name
    if tag_ns != parent_ns:
        out += " xmlns=%s" % quoteattr(tag_ns)
    for k, v in el.attrib.items():
        if k.startswith("{%s}" % XML_NS):
            k = "xml:" + local(k)
        elif k.startswith("{"):
            k = local(k)
        out += " %s=%s" % (k, quoteattr(v))
    inner = escape(el.text or "") + "".join(tostr(c, tag_ns) + escape(c.tail or "") for c in el)
    return out + (">" + inner + "</" + name + ">" if inner else "/>")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def ns(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


class Closed(Exception):
    """The TCP connection was closed (EOF or reset)."""


class StreamClosed(Exception):
    """The server closed the XML stream (</stream:stream>)."""


class XMPPError(Exception):
    pass


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    def __init__(self, host, port, domain="localhost", direct_tls=False, name="raw"):
        self.host, self.port, self.domain = host, port, domain
        self.direct_tls = direct_tls
        self.name = name
        self.sock = None
        self.tls = False
        self.mechanism = None
        self.jid = None
        self.features = None
        self.stream_closed = False
        self.eof = False
        self._pending = []
        self._parser = None

    # --- transport -------------------------------------------------------

    def connect(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        if self.direct_tls:
            ctx = tls_context()
            ctx.set_alpn_protocols(["xmpp-client"])
            s = ctx.wrap_socket(s, server_hostname=self.domain)
            self.tls = True
        self.sock = s
        return self

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        log(self.name, "SEND", short(data))
        self.sock.sendall(data)

    def abort(self):
        """Drop the TCP connection abruptly: RST, no </stream:stream>."""
        log(self.name, "ABORT (RST)")
        try:
            # SO_LINGER {on, 0s}: close() sends a RST (an SSLSocket is a socket).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self):
        try:
            if not self.stream_closed and not self.eof:
                self.send_raw("</stream:stream>")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # --- parsing ---------------------------------------------------------

    def _reset_parser(self):
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root = None
        self._pending = []

    def _feed(self, data):
        self._parser.feed(data)
        for event, el in self._parser.read_events():
            if event == "start":
                if self._depth == 0:
                    self._root = el
                    self._pending.append(("stream", el))
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 1:
                    self._pending.append(("element", el))
                    try:
                        self._root.remove(el)
                    except ValueError:
                        pass
                elif self._depth == 0:
                    self._pending.append(("close", el))

    def _next_event(self, timeout):
        deadline = time.monotonic() + timeout
        while not self._pending:
            if self.eof:
                raise Closed("connection closed by the server")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return None
            except ssl.SSLWantReadError:
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
                log(self.name, "RECV error", repr(e))
                self.eof = True
                raise Closed("connection reset: %r" % (e,))
            if not data:
                log(self.name, "RECV EOF")
                self.eof = True
                continue
            log(self.name, "RECV", short(data))
            self._feed(data)
        return self._pending.pop(0)

    def recv(self, timeout=10):
        """The next top-level element, or None on timeout.

        Raises StreamClosed at </stream:stream> and Closed at EOF."""
        while True:
            ev = self._next_event(timeout)
            if ev is None:
                return None
            kind, el = ev
            if kind == "element":
                return el
            if kind == "close":
                self.stream_closed = True
                raise StreamClosed("server closed the stream")
            # a (re)opened stream header: keep reading

    def expect(self, name, namespace=None, timeout=10):
        el = self.recv(timeout)
        if el is None:
            raise XMPPError("timeout waiting for <%s/>" % name)
        if local(el.tag) != name or (namespace and ns(el.tag) != namespace):
            raise XMPPError("expected <%s/>, got %s" % (name, short(tostr(el))))
        return el

    # --- stream ----------------------------------------------------------

    def open_stream(self, timeout=10):
        self._reset_parser()
        self.send_raw(
            "<?xml version='1.0'?><stream:stream to=%s version='1.0' xml:lang='en' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            % quoteattr(self.domain)
        )
        self.features = self.expect("features", NS_STREAM, timeout)
        return self.features

    def has_feature(self, name, namespace):
        return self.features is not None and self.features.find("{%s}%s" % (namespace, name)) is not None

    def mechanisms(self):
        mechs = self.features.find("{%s}mechanisms" % NS_SASL) if self.features is not None else None
        if mechs is None:
            return []
        return [m.text for m in mechs.findall("{%s}mechanism" % NS_SASL)]

    def starttls(self):
        self.send_raw("<starttls xmlns='%s'/>" % NS_TLS)
        self.expect("proceed", NS_TLS)
        self.sock.settimeout(10)
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=self.domain)
        self.tls = True
        return self.open_stream()

    def scram(self, user, password, mechanism="SCRAM-SHA-256"):
        hname = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}[mechanism]

        def h(data):
            return hashlib.new(hname, data).digest()

        def mac(key, data):
            return hmac.new(key, data, hname).digest()

        b64 = lambda b: base64.b64encode(b).decode()
        cnonce = base64.b64encode(os.urandom(18)).decode()
        gs2 = "n,,"
        sname = user.replace("=", "=3D").replace(",", "=2C")
        first_bare = "n=%s,r=%s" % (sname, cnonce)
        self.send_raw("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mechanism, b64((gs2 + first_bare).encode())))
        el = self.recv(10)
        if el is None or local(el.tag) != "challenge":
            raise XMPPError("SCRAM: expected challenge, got %s" % (tostr(el) if el is not None else "timeout"))
        server_first = base64.b64decode(el.text or "").decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        nonce, salt, iters = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not nonce.startswith(cnonce):
            raise XMPPError("SCRAM: server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac(hname, password.encode(), salt, iters)
        client_key = mac(salted, b"Client Key")
        stored_key = h(client_key)
        without_proof = "c=%s,r=%s" % (b64(gs2.encode()), nonce)
        auth_message = ",".join([first_bare, server_first, without_proof]).encode()
        sig = mac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send_raw("<response xmlns='%s'>%s</response>" % (NS_SASL, b64((without_proof + ",p=" + b64(proof)).encode())))
        el = self.recv(10)
        if el is None or local(el.tag) != "success":
            raise XMPPError("SCRAM: expected success, got %s" % (tostr(el) if el is not None else "timeout"))
        server_final = base64.b64decode(el.text or "").decode()
        server_key = mac(salted, b"Server Key")
        want = "v=" + b64(mac(server_key, auth_message))
        if server_final != want:
            raise XMPPError("SCRAM: bad server signature %r" % server_final)
        self.mechanism = mechanism
        return self.open_stream()

    def bind(self, resource=None):
        rid = "bind-" + uuid.uuid4().hex[:8]
        res = "<resource>%s</resource>" % escape(resource) if resource else ""
        self.send_raw("<iq type='set' id='%s'><bind xmlns='%s'>%s</bind></iq>" % (rid, NS_BIND, res))
        while True:
            el = self.recv(10)
            if el is None:
                raise XMPPError("bind: timeout")
            if local(el.tag) == "iq" and el.get("id") == rid:
                if el.get("type") != "result":
                    raise XMPPError("bind failed: %s" % tostr(el))
                j = el.find("{%s}bind/{%s}jid" % (NS_BIND, NS_BIND))
                self.jid = j.text
                return self.jid

    def login(self, user, password, resource=None, use_starttls=True, mechanism=None):
        """connect + stream + STARTTLS (unless direct TLS) + SCRAM + bind."""
        self.connect()
        self.open_stream()
        if not self.direct_tls and use_starttls:
            self.starttls()
        mechs = self.mechanisms()
        mech = mechanism or ("SCRAM-SHA-256" if "SCRAM-SHA-256" in mechs else "SCRAM-SHA-1")
        self.scram(user, password, mech)
        return self.bind(resource)

    def wait_for(self, pred, timeout=10):
        """Read elements until pred(el) is true; returns (el, skipped)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, skipped
            el = self.recv(left)
            if el is None:
                return None, skipped
            if pred(el):
                return el, skipped
            skipped.append(el)


def stream_error(el):
    """(condition, xml) when el is a <stream:error/>, else None."""
    if el is None or el.tag != "{%s}error" % NS_STREAM:
        return None
    cond = None
    for child in el:
        if ns(child.tag) == NS_STREAM_ERR and local(child.tag) != "text":
            cond = local(child.tag)
    return cond, tostr(el)
