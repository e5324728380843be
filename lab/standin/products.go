package standin

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Product is one synthetic product of a Product Opener flavor.
type Product struct {
	Code       string   // barcode (EAN-13 or EAN-8, valid check digit)
	Name       string   // product_name
	Brands     string   // brands, comma separated
	Quantity   string   // quantity, e.g. "400 g"
	Categories []string // categories_tags, e.g. "en:spreads"
	Images     int      // number of front images (1.jpg .. Images.jpg)
}

// flavor describes a Product Opener flavor.
type flavor struct {
	Name      string // human name, e.g. "Open Food Facts"
	Site      string // public site host
	ImageHost string // images host
	Products  []Product
}

var offProducts = []Product{
	{Code: "3017620422003", Name: "Nutella", Brands: "Ferrero", Quantity: "400 g",
		Categories: []string{"en:spreads", "en:sweet-spreads", "en:hazelnut-spreads"}, Images: 3},
	{Code: "5449000000996", Name: "Coca-Cola", Brands: "Coca-Cola", Quantity: "330 ml",
		Categories: []string{"en:beverages", "en:carbonated-drinks", "en:sodas", "en:colas"}, Images: 2},
	{Code: "3274080005003", Name: "Eau de source", Brands: "Cristaline", Quantity: "1.5 L",
		Categories: []string{"en:beverages", "en:waters", "en:spring-waters"}, Images: 1},
	{Code: "7622210449283", Name: "Prince goût chocolat", Brands: "LU, Mondelez", Quantity: "300 g",
		Categories: []string{"en:snacks", "en:biscuits", "en:chocolate-biscuits"}, Images: 2},
	{Code: "3168930010265", Name: "Cruesli Mélange de noix", Brands: "Quaker", Quantity: "450 g",
		Categories: []string{"en:breakfasts", "en:cereals", "en:mueslis"}, Images: 1},
}

// flavors holds every Product Opener flavor the stand-in knows. It is never
// modified.
var flavors = map[string]flavor{
	"off": {Name: "Open Food Facts", Site: "world.openfoodfacts.org", ImageHost: "images.openfoodfacts.org",
		Products: offProducts},
	"off-pro": {Name: "Open Food Facts for producers", Site: "world.pro.openfoodfacts.org", ImageHost: "images.openfoodfacts.org",
		Products: offProducts},
	"obf": {Name: "Open Beauty Facts", Site: "world.openbeautyfacts.org", ImageHost: "images.openbeautyfacts.org",
		Products: []Product{
			{Code: "4005808158690", Name: "Nivea Crème", Brands: "Nivea", Quantity: "150 ml",
				Categories: []string{"en:body-care", "en:creams", "en:moisturizers"}, Images: 2},
			{Code: "8712561488433", Name: "Beauty Cream Bar Original", Brands: "Dove", Quantity: "100 g",
				Categories: []string{"en:hygiene", "en:soaps", "en:solid-soaps"}, Images: 1},
			{Code: "8714789940113", Name: "Total Original toothpaste", Brands: "Colgate", Quantity: "75 ml",
				Categories: []string{"en:oral-care", "en:toothpastes"}, Images: 1},
		}},
	"opf": {Name: "Open Products Facts", Site: "world.openproductsfacts.org", ImageHost: "images.openproductsfacts.org",
		Products: []Product{
			{Code: "8001090621252", Name: "Pods All-in-1 Original", Brands: "Ariel", Quantity: "30 pods",
				Categories: []string{"en:household", "en:laundry-detergents"}, Images: 2},
			{Code: "3086123154001", Name: "Cristal ballpoint pens", Brands: "BIC", Quantity: "10 pens",
				Categories: []string{"en:office-supplies", "en:pens"}, Images: 1},
			{Code: "5000394203952", Name: "Plus AA alkaline batteries", Brands: "Duracell", Quantity: "4 batteries",
				Categories: []string{"en:electronics", "en:batteries"}, Images: 1},
			{Code: "20012342", Name: "Matches", Brands: "Allumettes", Quantity: "250 matches",
				Categories: []string{"en:household", "en:matches"}, Images: 1},
		}},
	"opff": {Name: "Open Pet Food Facts", Site: "world.openpetfoodfacts.org", ImageHost: "images.openpetfoodfacts.org",
		Products: []Product{
			{Code: "5900951017391", Name: "Poultry selection in jelly", Brands: "Whiskas", Quantity: "12 x 85 g",
				Categories: []string{"en:cat-food", "en:wet-cat-food"}, Images: 2},
			{Code: "5998749104361", Name: "Dentastix Medium", Brands: "Pedigree", Quantity: "180 g",
				Categories: []string{"en:dog-food", "en:dog-treats"}, Images: 1},
			{Code: "3182550702423", Name: "Mini Adult", Brands: "Royal Canin", Quantity: "2 kg",
				Categories: []string{"en:dog-food", "en:dry-dog-food"}, Images: 1},
		}},
}

// Flavors lists the known Product Opener flavors, sorted.
func Flavors() []string {
	out := make([]string, 0, len(flavors))
	for f := range flavors {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Products returns the synthetic product set of a flavor (a fresh copy the
// caller may modify), or nil for an unknown flavor. off-pro shares off's
// products, as the producers' platform holds the same food products.
func Products(flavorName string) []Product {
	f, ok := flavors[flavorName]
	if !ok {
		return nil
	}
	out := make([]Product, len(f.Products))
	for i, p := range f.Products {
		p.Categories = slices.Clone(p.Categories)
		out[i] = p
	}
	return out
}

// findProduct returns the product of a flavor with barcode code.
func findProduct(flavorName, code string) (Product, bool) {
	for _, p := range flavors[flavorName].Products {
		if p.Code == code {
			return p, true
		}
	}
	return Product{}, false
}

// validBarcode reports whether code looks like a barcode Product Opener
// accepts: 1 to 24 ASCII digits.
func validBarcode(code string) bool {
	if len(code) == 0 || len(code) > 24 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// productFolder is Product Opener's split of a barcode into directories:
// codes of 8 digits or fewer are one directory; longer codes are left-padded
// with zeros to 13 digits and split 3/3/3/rest (3017620422003 →
// 301/762/042/2003).
func productFolder(code string) string {
	if len(code) <= 8 {
		return code
	}
	if len(code) < 13 {
		code = strings.Repeat("0", 13-len(code)) + code
	}
	return code[0:3] + "/" + code[3:6] + "/" + code[6:9] + "/" + code[9:]
}

// ImagePath returns the Open Food Facts path of image n of a product:
// /images/products/301/762/042/2003/1.jpg for 3017620422003 image 1, and
// /images/products/12345678/1.jpg for barcodes of 8 digits or fewer (see
// Product Opener's split: longer barcodes are left-padded with zeros to 13
// digits, then split 3/3/3/rest). It returns "" for a code that is not 1 to
// 24 digits or for n < 1.
func ImagePath(code string, n int) string {
	if !validBarcode(code) || n < 1 {
		return ""
	}
	return "/images/products/" + productFolder(code) + "/" + strconv.Itoa(n) + ".jpg"
}

// imageURL is the public URL of image n of a product of a flavor.
func imageURL(flavorName, code string, n int) string {
	return "https://" + flavors[flavorName].ImageHost + ImagePath(code, n)
}

// ImageJPEG returns the generated image n of a product: a 64x64 JPEG whose
// colours derive from the barcode, with a stripe pattern that depends on n.
// The same arguments always give the same bytes.
func ImageJPEG(code string, n int) ([]byte, error) {
	if !validBarcode(code) || n < 1 {
		return nil, fmt.Errorf("standin: no image %d for barcode %q", n, code)
	}
	h := fnv.New64a()
	h.Write([]byte(code))
	sum := h.Sum64()
	bg := color.RGBA{R: byte(sum), G: byte(sum >> 8), B: byte(sum >> 16), A: 255}
	fg := color.RGBA{R: 255 - bg.R, G: 255 - bg.G, B: 255 - bg.B, A: 255}
	const size = 64
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	period := 4 + 4*(n%4) // image number changes the stripe width
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			c := bg
			if ((x+y)/period)%2 == 1 {
				c = fg
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, fmt.Errorf("standin: encoding image %d of %s: %w", n, code, err)
	}
	return buf.Bytes(), nil
}

// WriteImages writes the generated JPEG (see ImageJPEG) of every product
// image of the given flavors under root, at root + ImagePath(code, n),
// keeping only the images for which keep(code, n) is true (nil keeps all).
// Products shared by several flavors (off and off-pro) are written once. It
// returns the paths written, relative to root, slash-separated, in order.
func WriteImages(root string, flavorNames []string, keep func(code string, n int) bool) ([]string, error) {
	var written []string
	seen := map[string]bool{}
	for _, fl := range flavorNames {
		f, ok := flavors[fl]
		if !ok {
			return written, fmt.Errorf("standin: writing images: unknown Product Opener flavor %q", fl)
		}
		for _, p := range f.Products {
			for n := 1; n <= p.Images; n++ {
				rel := strings.TrimPrefix(ImagePath(p.Code, n), "/")
				if seen[rel] || (keep != nil && !keep(p.Code, n)) {
					continue
				}
				seen[rel] = true
				data, err := ImageJPEG(p.Code, n)
				if err != nil {
					return written, err
				}
				full := filepath.Join(root, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					return written, fmt.Errorf("standin: writing images: %w", err)
				}
				if err := os.WriteFile(full, data, 0o644); err != nil {
					return written, fmt.Errorf("standin: writing images: %w", err)
				}
				written = append(written, rel)
			}
		}
	}
	return written, nil
}
