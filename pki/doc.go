// Package pki generates and loads the development and test PKI: the
// certificate authority, server and client certificates used by `vaxel dev`,
// by tests and by `vaxel cert`, plus the TLS configuration helpers that
// every listener and client in vaxel (router, admin API, raft transport,
// tests) builds its *tls.Config with.
//
// It is not a production CA. Production certificates come from SITHS; this
// package only imitates their shape (the consumer's HSA-ID in the subject
// attribute SERIALNUMBER, RSA keys on request) so that development setups
// exercise the same identity rules as production. The CA key is written to
// disk unencrypted.
package pki
