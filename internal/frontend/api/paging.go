package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// Page sizes of ListCVEs: a page of CVEs with verdicts is about 3 KB a
// CVE, so the default page stays a few MB, under MaxMessage.
const (
	DefaultPage = 1000
	MaxPage     = 5000
)

// pageKey names a query, so that a page token cannot continue another one.
func pageKey(r *pb.ListCVEsRequest) [8]byte {
	q := proto.Clone(r).(*pb.ListCVEsRequest)
	q.PageSize, q.PageToken = 0, ""
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(q)
	h := sha256.Sum256(b)
	return [8]byte(h[:8])
}

// pageToken is where the next page starts, tied to the query.
func pageToken(offset int, key [8]byte) string {
	var b [16]byte
	copy(b[:8], key[:])
	binary.BigEndian.PutUint64(b[8:], uint64(offset))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func pageFrom(token string, key [8]byte) (int, error) {
	if token == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 16 || [8]byte(b[:8]) != key {
		return 0, status.Error(codes.InvalidArgument, "page_token is not one this query's answers gave")
	}
	off := binary.BigEndian.Uint64(b[8:])
	if off > 1<<31 {
		return 0, status.Error(codes.InvalidArgument, fmt.Sprintf("page_token points at %d", off))
	}
	return int(off), nil
}
