// Package check finds configurations that load but are dangerous or broken:
// a clear-text tunnel entrance on a public address, a database listening on
// the internet, a service used by a node that has no network path to it, two
// listeners on one port, a shared tunnel secret, a replica nobody watches.
//
// Each rule is a [Rule]: a stable ID (OE + three digits, the family by the
// hundreds: 1xx exposure, 2xx reachability and paths, 3xx conflicts, 4xx TLS
// and certificates, 5xx replication, 9xx the check itself), a title, a
// severity, the reason it exists (citing the incident or document behind it)
// and a minimal inventory that triggers it. Rules live next to their code,
// one file per family; [Rules], [Explain] and docs/checks.md are generated
// from that table.
//
// [Run] applies every rule to a loaded model and returns [Finding] values
// sorted by position. An inventory `suppress:` entry naming a rule and an
// object keeps the finding but marks it suppressed; a suppression naming an
// unknown rule, or matching nothing, is itself a finding (OE901, OE902).
// A suppression's object is written as findings name objects, `KIND "NAME"`
// (`tunnel "mongodb-ovh"`, quotes optional), and then matches that object
// only; a bare `NAME` matches every object of that name, whatever its kind.
//
// Rules share one index of the model built once per Run, so that a check over
// thousands of nodes and services stays linear where an index can make it so.
package check
