// Package catalog turns a remote server's SMTP reply into a classification
// (class, scope, permanence) and explains every basic and enhanced status
// code in words an on-call engineer can act on. Codes, classes and provider
// rules are embedded YAML data compiled once into a single-pass
// multi-pattern matcher, and operators can add their own rules from a file
// without rebuilding.
package catalog
