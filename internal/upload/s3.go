package upload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize bounds the memory of one upload to S3: the client buffers one
// multipart part at a time. 8 MiB × 10,000 parts allows 80 GB files.
const s3PartSize = 8 << 20

// S3Config names an S3-compatible bucket.
type S3Config struct {
	Endpoint  string // host:port
	Bucket    string
	AccessKey string
	SecretKey string
	Region    string
	TLS       bool
	Prefix    string // prepended to every key
}

// S3 stores objects in an S3-compatible bucket (AWS S3, MinIO, versitygw,
// Ceph RGW...). Every node of a cluster pointed at the same bucket shares
// all files and slots.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

// NewS3 connects to the bucket and checks that it exists.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.TLS,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("upload s3 %s: %v", cfg.Endpoint, err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("upload s3 %s bucket %s: %v", cfg.Endpoint, cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("upload s3 %s: bucket %s does not exist (create it first)", cfg.Endpoint, cfg.Bucket)
	}
	p := strings.Trim(cfg.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: p}, nil
}

func (s *S3) name(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("upload: invalid key %q", key)
	}
	return s.prefix + key, nil
}

func isNoSuchKey(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound
}

func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := s.name(key)
	if err != nil {
		return err
	}
	_, err = s.c.PutObject(ctx, s.bucket, name, io.LimitReader(r, size), size, minio.PutObjectOptions{
		PartSize:    s3PartSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		// Drop the parts of an interrupted multipart upload.
		s.c.RemoveIncompleteUpload(context.WithoutCancel(ctx), s.bucket, name)
	}
	return err
}

type s3Object struct {
	*minio.Object
	info minio.ObjectInfo
}

func (o s3Object) Size() int64        { return o.info.Size }
func (o s3Object) ModTime() time.Time { return o.info.LastModified }

func (s *S3) Get(ctx context.Context, key string) (Object, error) {
	name, err := s.name(key)
	if err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	info, err := o.Stat()
	if err != nil {
		o.Close()
		if isNoSuchKey(err) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return s3Object{o, info}, nil
}

// Move is a server-side copy then a delete: S3 has no rename. ComposeObject
// copies in one request up to 5 GiB and by multipart copy beyond, so no
// max_file_size is too big for it.
func (s *S3) Move(ctx context.Context, src, dst string) error {
	ns, err := s.name(src)
	if err != nil {
		return err
	}
	nd, err := s.name(dst)
	if err != nil {
		return err
	}
	_, err = s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: nd}, minio.CopySrcOptions{Bucket: s.bucket, Object: ns})
	if err != nil {
		if isNoSuchKey(err) {
			return ErrNotFound
		}
		return err
	}
	return s.c.RemoveObject(ctx, s.bucket, ns, minio.RemoveObjectOptions{})
}

func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.name(key)
	if err != nil {
		return err
	}
	err = s.c.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil && isNoSuchKey(err) {
		return nil
	}
	return err
}

func (s *S3) List(ctx context.Context, prefix string) ([]Entry, error) {
	var out []Entry
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			if isNoSuchKey(o.Err) {
				break
			}
			return nil, o.Err
		}
		key := strings.TrimPrefix(o.Key, s.prefix)
		if !validKey(key) {
			continue
		}
		out = append(out, Entry{Key: key, Size: o.Size, ModTime: o.LastModified})
	}
	return out, nil
}
