package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/server"
	"bluetick/internal/store/sqlite"
)

func uploadTestServer(t *testing.T, cfg config.Config) *server.Server {
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return server.New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestNewUploadWiring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	svc, err := newUpload(ctx, cfg, uploadTestServer(t, cfg), log)
	if err != nil || svc == nil {
		t.Fatalf("default config: service %v, %v", svc, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "upload.secret")); err != nil {
		t.Errorf("no generated secret in the data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "upload")); err != nil {
		t.Errorf("no disk storage in data_dir/upload: %v", err)
	}

	off := config.Default()
	off.DataDir = t.TempDir()
	off.Listen.HTTP = ""
	if svc, err := newUpload(ctx, off, uploadTestServer(t, off), log); svc != nil || err != nil {
		t.Errorf("no HTTP listener: service %v, %v; want none", svc, err)
	}
	off.Listen.HTTP = ":5280"
	off.Upload.Enabled = false
	if svc, err := newUpload(ctx, off, uploadTestServer(t, off), log); svc != nil || err != nil {
		t.Errorf("upload.enabled = false: service %v, %v; want none", svc, err)
	}

	bad := config.Default()
	bad.DataDir = t.TempDir()
	bad.Upload.Storage = "s3"
	bad.Upload.S3.Endpoint = "127.0.0.1:1" // nothing listens there
	bad.Upload.S3.Bucket = "media"
	bad.Upload.S3.TLS = false
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := newUpload(sctx, bad, uploadTestServer(t, bad), log); err == nil {
		t.Error("unreachable S3 endpoint accepted at startup")
	}
}
