package gateway

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"bluetick/internal/store"
)

// WebPush delivers to Web Push subscriptions (browsers, and UnifiedPush
// distributors on Android without Google services): the notification is
// encrypted for the subscriber per RFC 8291 (aes128gcm, RFC 8188), posted
// to its endpoint per RFC 8030, and the server identifies itself with
// VAPID (RFC 8292), an ES256 JWT under a key pair generated once.
type WebPush struct {
	Key     *ecdsa.PrivateKey // VAPID key pair (P-256)
	Subject string            // mailto: or https: contact
	TTL     time.Duration     // how long the push service keeps an undelivered push
	Client  *http.Client
}

// LoadVAPIDKey reads the VAPID key from path, generating and saving it
// the first time.
func LoadVAPIDKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("saving the VAPID key: %v", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	ek, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 key", path)
	}
	return ek, nil
}

// PublicKey is the VAPID public key, uncompressed (65 bytes): the
// applicationServerKey a client subscribes with.
func (w *WebPush) PublicKey() []byte {
	pk, err := w.Key.PublicKey.ECDH()
	if err != nil {
		return nil
	}
	return pk.Bytes()
}

// errTooLarge: the notification does not fit in one record.
var errTooLarge = fmt.Errorf("webpush: payload too large: %w", errPermanent)

// recordSize is the RFC 8188 record size written in the header; one
// record holds the whole (small) notification.
const recordSize = 4096

// Encrypt encrypts plaintext for a subscriber per RFC 8291 §3-4 and
// returns the aes128gcm body (header with salt, rs, keyid = the
// ephemeral public key, then the single record).
func Encrypt(plaintext, uaPublic, authSecret []byte) ([]byte, error) {
	ua, err := ecdh.P256().NewPublicKey(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("webpush: subscriber key: %w", err)
	}
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	return encrypt(plaintext, ua, as, authSecret, salt)
}

func encrypt(plaintext []byte, ua *ecdh.PublicKey, as *ecdh.PrivateKey, authSecret, salt []byte) ([]byte, error) {
	if len(plaintext) > recordSize-16-1 {
		return nil, errTooLarge
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPub := as.PublicKey().Bytes()
	cek, nonce, err := deriveKeys(shared, authSecret, salt, ua.Bytes(), asPub)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var hdr bytes.Buffer
	hdr.Write(salt)
	binary.Write(&hdr, binary.BigEndian, uint32(recordSize))
	hdr.WriteByte(byte(len(asPub)))
	hdr.Write(asPub)
	// The last (only) record ends with the delimiter 0x02 (RFC 8188 §2).
	rec := append(append([]byte{}, plaintext...), 0x02)
	return gcm.Seal(hdr.Bytes(), nonce, rec, nil), nil
}

// deriveKeys is RFC 8291 §3.4 and RFC 8188 §2.2: IKM from the ECDH secret
// and the auth secret, then the content key and nonce from IKM and salt.
func deriveKeys(shared, authSecret, salt, uaPub, asPub []byte) (cek, nonce []byte, err error) {
	info := append(append([]byte("WebPush: info\x00"), uaPub...), asPub...)
	ikm, err := hkdf.Key(sha256.New, shared, authSecret, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	if cek, err = hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16); err != nil {
		return nil, nil, err
	}
	nonce, err = hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	return cek, nonce, err
}

// Decrypt reverses Encrypt with the subscriber's private key and auth
// secret (what a browser does; used by tests and available to relays).
func Decrypt(body []byte, ua *ecdh.PrivateKey, authSecret []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("webpush: short body")
	}
	salt := body[:16]
	idlen := int(body[20])
	if len(body) < 21+idlen {
		return nil, errors.New("webpush: short header")
	}
	asPub := body[21 : 21+idlen]
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	shared, err := ua.ECDH(as)
	if err != nil {
		return nil, err
	}
	cek, nonce, err := deriveKeys(shared, authSecret, salt, ua.PublicKey().Bytes(), asPub)
	if err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	rec, err := gcm.Open(nil, nonce, body[21+idlen:], nil)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(rec, 0x02)
	if i < 0 || len(bytes.Trim(rec[i+1:], "\x00")) != 0 {
		return nil, errors.New("webpush: no last-record delimiter")
	}
	return rec[:i], nil
}

// Send implements Provider. 404 and 410 mean the subscription expired.
func (w *WebPush) Send(ctx context.Context, d store.PushDevice, m Message) error {
	u, err := checkURL(d.Token, "https")
	if err != nil {
		return err
	}
	body, err := Encrypt(payload(d, m), d.P256DH, d.Auth)
	if errors.Is(err, errTooLarge) {
		// A long sender JID or device id: the push still wakes the
		// device, without the optional fields.
		body, err = Encrypt(payload(store.PushDevice{}, Message{Node: m.Node, Count: m.Count}), d.P256DH, d.Auth)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", err, errPermanent)
	}
	jwt, err := signJWT(w.Key, "", map[string]any{
		"aud": u.Scheme + "://" + u.Host,
		"exp": time.Now().Add(12 * time.Hour).Unix(),
		"sub": w.Subject,
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Token, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ttl := w.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	req.Header.Set("TTL", fmt.Sprint(int(ttl.Seconds())))
	req.Header.Set("Urgency", "high")
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "vapid t="+jwt+", k="+b64.EncodeToString(w.PublicKey()))
	resp, err := w.Client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return ErrUnregistered
	}
	return httpError("webpush", resp)
}
