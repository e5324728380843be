package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObserveCommands(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"probe list", []string{"probe", "--list"}, 0, "site/www.openfoodfacts.net", ""},
		{"probe list of a node", []string{"probe", "--list", "--node", "docker-prod"}, 0, "service/docker-prod/mongodb", ""},
		{"probe list json", []string{"probe", "--list", "--format", "json", "--node", "ovh-stunnel-client"}, 0, `"tunnel": "mongodb-ovh"`, ""},
		{"probe unknown node", []string{"probe", "--node", "off9"}, 2, "", `unknown node "off9"`},
		{"probe bad format", []string{"probe", "--format", "xml"}, 2, "", "--format must be text or json"},
		{"probe lab unreachable", []string{"probe", "--lab", "127.0.0.1:1"}, 1, "", "asking the lab"},
		{"export prometheus needs out", []string{"export", "prometheus"}, 2, "", "--out is required"},
		{"export prometheus unknown from", []string{"export", "prometheus", "--out", dir, "--from", "nowhere"}, 2, "", `unknown node "nowhere"`},
		{"export prometheus", []string{"export", "prometheus", "--out", dir, "--from", "ovh-monitoring", "--alertmanager", "127.0.0.1:9093"}, 0, "scrape jobs", "has no network path to osm45"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectRun(t, tt.args, tt.code, tt.out, tt.err) })
	}
	b, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// ovh-monitoring reaches off1 over the internet (its public address),
	// docker-prod on ovh-lan.
	for _, want := range []string{"job_name: offedge-off1", "213.36.253.206:9901", "10.1.0.201:9901", "127.0.0.1:9093"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, b)
		}
	}
}
