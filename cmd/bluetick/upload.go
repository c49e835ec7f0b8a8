package main

import (
	"context"
	"log/slog"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/server"
	"bluetick/internal/upload"
)

// newUpload builds the XEP-0363 service from [upload] and registers its
// slot requests on the server's IQ mux. It returns nil when upload is
// disabled or no HTTP listener could receive the files: then nothing is
// advertised.
func newUpload(ctx context.Context, cfg config.Config, im *server.Server, log *slog.Logger) (*upload.Service, error) {
	base := cfg.UploadBaseURL()
	if !cfg.Upload.Enabled {
		return nil, nil
	}
	if base == "" {
		log.Info("http upload off: no HTTP listener (set listen.http or listen.https)")
		return nil, nil
	}
	if cfg.Cluster.NATS != "" {
		if cfg.Upload.Secret == "" {
			log.Warn("cluster mode with a generated upload secret: a PUT reaching another node than the slot's is refused; set the same upload.secret on every node")
		}
		if cfg.Upload.Storage == "disk" && cfg.Upload.Dir == "" {
			log.Warn("cluster mode with upload storage on this node's disk: other nodes cannot serve its files; use upload.storage = \"s3\" or a shared upload.dir")
		}
	}
	secret, err := upload.Secret(cfg.Upload.Secret, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var b upload.Backend
	switch cfg.Upload.Storage {
	case "s3":
		s3 := cfg.Upload.S3
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		b, err = upload.NewS3(sctx, upload.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, AccessKey: s3.AccessKey,
			SecretKey: s3.SecretKey, Region: s3.Region, TLS: s3.TLS, Prefix: s3.Prefix})
	default:
		b, err = upload.NewDisk(cfg.UploadDir())
	}
	if err != nil {
		return nil, err
	}
	svc, err := upload.New(b, secret, base, upload.LimitsFrom(cfg.Upload), log)
	if err != nil {
		return nil, err
	}
	svc.Register(im.Mux())
	log.Info("http upload on", "base_url", base, "storage", cfg.Upload.Storage, "max_file_size", cfg.Upload.MaxFileSize)
	return svc, nil
}
