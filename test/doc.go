// Package test holds Rebound's end-to-end tests: they build the worker binary, start it
// against real NATS and Redis with a private stream, consumer and key prefix, and talk
// to it only through HTTP, as an operator or an ESP would.
package test
