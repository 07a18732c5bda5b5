package awssm

import (
	"bytes"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// ownBody is the client's HTTP client with each request's body copied
// before it is sent.
//
// It works around a race in the SDK (smithy-go v1.28): the SDK closes the
// request body as soon as the response headers arrive, and the body's
// WriteTo then returns io.EOF. net/http, which may still be making its
// final read of the body (it checks that nothing follows the announced
// length once the bytes are on the wire, and a fast server has answered by
// then), takes that io.EOF for a failed write and closes the connection
// under the response being read: the call fails with "use of closed network
// connection", and the SDK retries it (the symptom of aws-sdk-go-v2 issue
// 2737). The source's request bodies are a few hundred bytes of JSON, so the
// copy costs nothing worth counting.
type ownBody struct {
	inner secretsmanager.HTTPClient
}

func (c ownBody) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return c.inner.Do(req)
}
