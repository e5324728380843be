package standin

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// gtinValid checks a GTIN check digit.
func gtinValid(code string) bool {
	sum := 0
	for i := 0; i < len(code)-1; i++ {
		d := int(code[i] - '0')
		if (len(code)-1-i)%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return (10-sum%10)%10 == int(code[len(code)-1]-'0')
}

func TestProducts(t *testing.T) {
	off := Products("off")
	want := []string{"3017620422003", "5449000000996", "3274080005003", "7622210449283", "3168930010265"}
	var got []string
	for _, p := range off {
		got = append(got, p.Code)
	}
	if !slices.Equal(got, want) {
		t.Errorf("off codes = %v, want %v", got, want)
	}
	if off[0].Name != "Nutella" || off[0].Brands != "Ferrero" {
		t.Errorf("first off product = %+v, want Nutella by Ferrero", off[0])
	}
	for _, fl := range Flavors() {
		ps := Products(fl)
		if len(ps) < 3 {
			t.Errorf("%s: %d products, want a handful", fl, len(ps))
		}
		for _, p := range ps {
			if !validBarcode(p.Code) || (len(p.Code) != 13 && len(p.Code) != 8) || !gtinValid(p.Code) {
				t.Errorf("%s: %s is not a valid EAN-8/13", fl, p.Code)
			}
			if p.Name == "" || p.Brands == "" || p.Quantity == "" || len(p.Categories) == 0 || p.Images < 1 {
				t.Errorf("%s: incomplete product %+v", fl, p)
			}
			for _, c := range p.Categories {
				if !strings.HasPrefix(c, "en:") {
					t.Errorf("%s %s: category %q is not a tag", fl, p.Code, c)
				}
			}
		}
	}
	if Products("nope") != nil {
		t.Error("Products of an unknown flavor is not nil")
	}
	// A copy: changing it changes nothing.
	off[0].Categories[0] = "changed"
	if Products("off")[0].Categories[0] == "changed" {
		t.Error("Products returns shared slices")
	}
}

func TestImagePath(t *testing.T) {
	tests := []struct {
		code string
		n    int
		want string
	}{
		{"3017620422003", 1, "/images/products/301/762/042/2003/1.jpg"},
		{"3017620422003", 12, "/images/products/301/762/042/2003/12.jpg"},
		{"12345678", 1, "/images/products/12345678/1.jpg"},
		{"123", 2, "/images/products/123/2.jpg"},
		{"123456789", 1, "/images/products/000/012/345/6789/1.jpg"},
		{"12345678901234", 1, "/images/products/123/456/789/01234/1.jpg"},
		{"", 1, ""},
		{"12a45678", 1, ""},
		{"../../etc", 1, ""},
		{"3017620422003", 0, ""},
		{strings.Repeat("1", 25), 1, ""},
	}
	for _, tt := range tests {
		if got := ImagePath(tt.code, tt.n); got != tt.want {
			t.Errorf("ImagePath(%q, %d) = %q, want %q", tt.code, tt.n, got, tt.want)
		}
	}
}

func TestImageJPEG(t *testing.T) {
	a, err := ImageJPEG("3017620422003", 1)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ImageJPEG("3017620422003", 1)
	if !bytes.Equal(a, again) {
		t.Error("ImageJPEG is not deterministic")
	}
	other, _ := ImageJPEG("5449000000996", 1)
	second, _ := ImageJPEG("3017620422003", 2)
	if bytes.Equal(a, other) || bytes.Equal(a, second) {
		t.Error("different products or image numbers give the same image")
	}
	img, err := jpeg.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
		t.Errorf("image is %v, want 64x64", b)
	}
	if len(a) > 8<<10 {
		t.Errorf("image is %d bytes, want small", len(a))
	}
	if _, err := ImageJPEG("x", 1); err == nil {
		t.Error("ImageJPEG accepted an invalid barcode")
	}
}

func TestWriteImages(t *testing.T) {
	root := t.TempDir()
	keep := func(code string, n int) bool { return !strings.HasSuffix(code, "3") }
	paths, err := WriteImages(root, []string{"off", "off-pro", "opf"}, keep)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, fl := range []string{"off", "opf"} { // off-pro shares off's images
		for _, p := range Products(fl) {
			if keep(p.Code, 1) {
				want += p.Images
			}
		}
	}
	if len(paths) != want {
		t.Errorf("%d images written, want %d: %v", len(paths), want, paths)
	}
	if !slices.Contains(paths, "images/products/544/900/000/0996/2.jpg") {
		t.Errorf("Coca-Cola's second image missing from %v", paths)
	}
	if !slices.Contains(paths, "images/products/20012342/1.jpg") {
		t.Errorf("the EAN-8 image missing from %v", paths)
	}
	for _, p := range paths {
		if strings.Contains(p, "301/762/042/2003") {
			t.Errorf("%s written although keep refused it", p)
		}
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "images/products/301/762/042/2003/1.jpg")); !os.IsNotExist(err) {
		t.Errorf("Nutella image exists although refused: %v", err)
	}
	all, err := WriteImages(t.TempDir(), []string{"obf"}, nil)
	if err != nil || len(all) != 4 {
		t.Errorf("WriteImages(obf, nil) = %v, %v; want 4 images", all, err)
	}
	if _, err := WriteImages(t.TempDir(), []string{"zzz"}, nil); err == nil {
		t.Error("WriteImages accepted an unknown flavor")
	}
}
