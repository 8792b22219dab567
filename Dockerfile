# Multi-stage build: a static binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/worker ./cmd/worker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /worker
# Numeric, so that Kubernetes can check runAsNonRoot without a runAsUser (65532 is
# distroless' nonroot).
USER 65532:65532
# Inside a container the service must listen beyond loopback.
ENV REBOUND_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/worker"]
