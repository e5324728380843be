module github.com/offedge/offedge

go 1.26.8

require (
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/coreos/go-systemd/v22 v22.7.0
