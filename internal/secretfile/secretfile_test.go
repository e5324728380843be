package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	const secret = "Ahng7eeShie5ohch0EeW4ieM1aiPh5ee"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr error
		errHas  []string
	}{
		{name: "pwgen with newline", content: secret + "\n", mode: 0o600, want: secret},
		{name: "crlf", content: secret + "\r\n", mode: 0o400, want: secret},
		{name: "no newline", content: secret, mode: 0o600, want: secret},
		{name: "stunnel identity:key line kept whole", content: "off1:" + secret + "\n", mode: 0o600, want: "off1:" + secret},
		{name: "group readable", content: secret, mode: 0o640, wantErr: ErrPermissions, errHas: []string{"chmod 600", "0640"}},
		{name: "world readable", content: secret, mode: 0o644, wantErr: ErrPermissions, errHas: []string{"chmod 600"}},
		{name: "group writable", content: secret, mode: 0o620, wantErr: ErrPermissions},
		{name: "empty", content: "", mode: 0o600, wantErr: ErrTooShort},
		{name: "just newline", content: "\n", mode: 0o600, wantErr: ErrTooShort},
		{name: "short", content: "tooshort\n", mode: 0o600, wantErr: ErrTooShort, errHas: []string{"pwgen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "psk")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := Read(p)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Read: err %v; want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not name the path", err)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if len(tt.content) > 4 && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
					t.Errorf("error %q leaks the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestReadRefusesOddFiles(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing", func(t *testing.T) {
		_, err := Read(filepath.Join(dir, "nope"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err %v; want not exist", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		d := filepath.Join(dir, "d")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(d); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err %v; want not a regular file", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := filepath.Join(dir, "big")
		if err := os.WriteFile(p, make([]byte, MaxLen+10), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err %v; want too large", err)
		}
	})
}

func TestGenerate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new.psk")
	if err := Generate(p); err != nil {
		t.Fatal(err)
	}
	b, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 43 || Weakness(b) != "" {
		t.Fatalf("new secret of %d characters, weakness %q; want 43 base64url characters (32 bytes) judged not weak", len(b), Weakness(b))
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v; want 0600", st.Mode().Perm())
	}
	if err := Generate(p); err == nil {
		t.Fatal("Generate replaced an existing secret")
	}
	q := filepath.Join(t.TempDir(), "other.psk")
	if err := Generate(q); err != nil {
		t.Fatal(err)
	}
	if c, _ := Read(q); string(c) == string(b) {
		t.Fatal("two new secrets are equal")
	}
}

func TestWeakness(t *testing.T) {
	for _, tt := range []struct {
		secret string
		weak   bool
	}{
		{"Ahng7eeShie5ohch0EeW4ieM1aiPh5ee", false},                                 // pwgen 32
		{"9f23f0677c38b417d164ff6a1ab719fa082d3e7d9bf84f9ccb268d891f78e967", false}, // hex of 32 bytes
		{"short-but-random-Xq9", true},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true},
		{"passwordpasswordpasswordpassword", true},
		{"01234567890123456789012345678901", true},
	} {
		if got := Weakness([]byte(tt.secret)); (got != "") != tt.weak {
			t.Errorf("Weakness(%q) = %q; want weak %v", tt.secret, got, tt.weak)
		}
	}
}
