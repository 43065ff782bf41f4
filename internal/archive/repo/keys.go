package repo

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/atomicfile"
)

// Signer signs metadata for a role. It is sigstore's signature.Signer, so
// sigstore's KMS back ends (AWS, GCP, Azure, HashiCorp Vault) and a PKCS#11
// token plug in without changing the archive. A signer that talks to a
// service should carry the context it was made with (KeyStore.Signers gets
// one), since go-tuf's Sign passes none.
type Signer interface {
	signature.Signer
}

// KeyStore holds the archive's signing keys by role. FileKeys is the
// default; an HSM or KMS store implements the same three calls.
type KeyStore interface {
	// Signers returns the signers the store holds for role.
	Signers(ctx context.Context, role string) ([]Signer, error)
	// Generate makes and keeps a new key for role.
	Generate(ctx context.Context, role string) (Signer, error)
	// Retire takes a key out of use after a rotation (a file store keeps
	// it aside rather than destroying it).
	Retire(ctx context.Context, role, keyID string) error
}

// KeyID is the TUF key ID of s's public key.
func KeyID(s Signer) (string, error) {
	k, err := tufKey(s)
	if err != nil {
		return "", err
	}
	return k.ID()
}

func tufKey(s Signer) (*metadata.Key, error) {
	pub, err := s.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return k, nil
}

// FileKeys keeps ed25519 keys as PKCS#8 PEM files, Dir/<role>/<keyid>.pem,
// mode 0600 in 0700 directories; retired keys go to Dir/retired/.
type FileKeys struct {
	Dir string
}

var _ KeyStore = FileKeys{}

// Signers returns the keys in Dir/<role>, by key ID.
func (f FileKeys) Signers(_ context.Context, role string) ([]Signer, error) {
	if err := checkRole(role); err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(f.Dir, role, "*.pem"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []Signer
	for _, p := range paths {
		s, err := LoadKey(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Generate makes a new ed25519 key for role.
func (f FileKeys) Generate(_ context.Context, role string) (Signer, error) {
	if err := checkRole(role); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", role, err)
	}
	s, err := signerFor(priv)
	if err != nil {
		return nil, err
	}
	id, err := KeyID(s)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", role, err)
	}
	dir := filepath.Join(f.Dir, role)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	p := filepath.Join(dir, id+".pem")
	if err := atomicfile.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write %s key: %w", role, err)
	}
	return s, nil
}

// Retire moves a key file to Dir/retired/<role>-<keyid>.pem.
func (f FileKeys) Retire(_ context.Context, role, keyID string) error {
	if err := checkRole(role); err != nil {
		return err
	}
	if strings.ContainsAny(keyID, "/.") || keyID == "" {
		return fmt.Errorf("retire key %q: not a key ID", keyID)
	}
	dir := filepath.Join(f.Dir, "retired")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("key directory: %w", err)
	}
	err := os.Rename(filepath.Join(f.Dir, role, keyID+".pem"), filepath.Join(dir, role+"-"+keyID+".pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not held here (an offline key)
	}
	return err
}

// LoadKey reads an ed25519 PKCS#8 PEM key file. It refuses a file others
// may read: a signing key readable by other users is a leaked key.
func LoadKey(path string) (Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: mode %v: others may read it (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load key %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %s: %T, want ed25519", path, k)
	}
	return signerFor(priv)
}

func signerFor(priv ed25519.PrivateKey) (Signer, error) {
	// crypto.Hash(0): ed25519 signs the message itself.
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	return s, nil
}

var roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

func checkRole(role string) error {
	for _, r := range roles {
		if r == role {
			return nil
		}
	}
	return invalidf("role %q: want one of %s", role, strings.Join(roles, ", "))
}
