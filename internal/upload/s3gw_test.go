package upload

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 backend is tested against a real S3-compatible server: versitygw
// with its POSIX backend, started on a free loopback port in a temp dir.
const versitygwInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	gwAccess = "bluetick-test"
	gwSecret = "bluetick-test-secret-key"
)

var gw struct {
	once     sync.Once
	endpoint string
	err      error
	skip     string
	cmd      *exec.Cmd
	dir      string
	buckets  int
	mu       sync.Mutex
}

func findVersitygw() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func startVersitygw() {
	bin := findVersitygw()
	if bin == "" {
		msg := "versitygw not found on PATH or in $GOPATH/bin; install it with: " + versitygwInstall
		if os.Getenv("CI") == "true" {
			gw.err = fmt.Errorf("%s (CI=true: the S3 backend must be tested)", msg)
		} else {
			gw.skip = msg
		}
		return
	}
	dir, err := os.MkdirTemp("", "bluetick-versitygw-")
	if err != nil {
		gw.err = err
		return
	}
	gw.dir = dir
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o700)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gw.err = err
		return
	}
	addr := ln.Addr().String()
	ln.Close()
	// --sidecar keeps object metadata in files, so the temp dir's file
	// system needs no extended attributes.
	side := filepath.Join(dir, "sidecar")
	os.MkdirAll(side, 0o700)
	cmd := exec.Command(bin, "--access", gwAccess, "--secret", gwSecret, "--port", addr, "posix", "--sidecar", side, root)
	// Dies with the test binary even if that one crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, _ := os.Create(filepath.Join(dir, "versitygw.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		gw.err = fmt.Errorf("starting %s: %v", bin, err)
		return
	}
	gw.cmd = cmd
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "versitygw.log"))
			gw.err = fmt.Errorf("versitygw did not listen on %s within 15s: %s", addr, log)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	gw.endpoint = addr
}

func stopVersitygw() {
	if gw.cmd != nil {
		gw.cmd.Process.Kill()
		gw.cmd.Wait()
	}
	if gw.dir != "" {
		os.RemoveAll(gw.dir)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopVersitygw()
	os.Exit(code)
}

// newS3Backend returns an S3 backend on a fresh bucket of the test
// versitygw, skipping (or failing under CI=true) when it is not installed.
func newS3Backend(t testing.TB) *S3 {
	t.Helper()
	gw.once.Do(startVersitygw)
	if gw.err != nil {
		t.Fatal(gw.err)
	}
	if gw.skip != "" {
		t.Skip(gw.skip)
	}
	gw.mu.Lock()
	gw.buckets++
	bucket := fmt.Sprintf("bt-test-%d", gw.buckets)
	gw.mu.Unlock()
	ctx := context.Background()
	c, err := minio.New(gw.endpoint, &minio.Options{Creds: credentials.NewStaticV4(gwAccess, gwSecret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	b, err := NewS3(ctx, S3Config{Endpoint: gw.endpoint, Bucket: bucket, AccessKey: gwAccess, SecretKey: gwSecret, Region: "us-east-1", Prefix: "media"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backends are the storages every behaviour test runs against.
var backends = []struct {
	name string
	new  func(testing.TB) Backend
}{
	{"disk", func(t testing.TB) Backend {
		d, err := NewDisk(filepath.Join(t.TempDir(), "upload"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
	{"s3", func(t testing.TB) Backend { return newS3Backend(t) }},
}
