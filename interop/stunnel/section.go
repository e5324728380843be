package stunnel

// End describes one end of a tunnel run by stunnel4 facing an offedge
// end, for `offedge export stunnel`.
type End struct {
	// Name is the tunnel name (the section name, and the SNI an entrance sends).
	Name string
	// Client is true for an entrance (client = yes), false for an exit.
	Client bool
	// Accept and Connect are in stunnel syntax (host:port, IPv6 as [addr]:port
	// or addr:port, or a bare port).
	Accept, Connect string
	// CertFile and KeyFile are where the PEMs of tunnel.DerivePSKKey (or a PKI
	// node certificate and key) are installed; KeyFile must be mode 0600.
	CertFile, KeyFile string
	// CAFile is the trust anchor: for psk, the derived certificate itself
	// (empty means CertFile); for pki, the CA certificate.
	CAFile string
}

// Section returns the stunnel4 section. Authentication is mutual TLS 1.3
// with the peer certificate checked against CAFile (verifyPeer = yes):
// with a derived PSK certificate both ends hold the same self-signed
// certificate, so only a holder of the secret is accepted.
func (s End) Section() Section {
	ca := s.CAFile
	if ca == "" {
		ca = s.CertFile
	}
	client := "no"
	if s.Client {
		client = "yes"
	}
	opts := []Option{
		{Key: "client", Value: client},
		{Key: "accept", Value: s.Accept},
		{Key: "connect", Value: s.Connect},
	}
	if s.Client {
		opts = append(opts, Option{Key: "sni", Value: s.Name})
	}
	opts = append(opts,
		Option{Key: "sslVersionMin", Value: "TLSv1.3"},
		Option{Key: "cert", Value: s.CertFile},
		Option{Key: "key", Value: s.KeyFile},
		Option{Key: "CAfile", Value: ca},
		Option{Key: "verifyPeer", Value: "yes"},
	)
	return Section{Name: s.Name, Options: opts}
}
