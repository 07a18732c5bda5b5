package smtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// This file holds what goes over the wire: the AWS JSON 1.1 framing, the
// error body, timestamps and the shapes of requests and responses. Member
// names are the ones of the Secrets Manager Smithy model (2017-10-17), as
// registered in github.com/aws/aws-sdk-go-v2/service/secretsmanager/schemas;
// the SDK matches them case-sensitively, except the message of an error.

const (
	targetPrefix    = "secretsmanager."
	jsonContentType = "application/x-amz-json-1.1"
	maxRequestBody  = 1 << 20 // the largest request is a 64 KiB secret, base64-encoded

	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

// awsError is an error response: the exception name goes in "__type", the
// text in "Message" (the member name of every Secrets Manager exception shape).
type awsError struct {
	status  int
	code    string
	message string
}

func (e *awsError) Error() string { return e.code + ": " + e.message }

func errNotFound(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "ResourceNotFoundException", msg}
}

func errInvalidParameter(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "InvalidParameterException", msg}
}

func errInvalidRequest(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "InvalidRequestException", msg}
}

func errResourceExists(msg string) *awsError {
	return &awsError{http.StatusBadRequest, "ResourceExistsException", msg}
}

// errValidation is what AWS answers when a request breaks a constraint of the
// model (length, range, required). ValidationException is not a modeled
// Secrets Manager error, so the SDK surfaces it as a generic smithy.APIError.
func errValidation(format string, args ...any) *awsError {
	return &awsError{http.StatusBadRequest, "ValidationException",
		"1 validation error detected: " + fmt.Sprintf(format, args...)}
}

func errSerialization(err error) *awsError {
	return &awsError{http.StatusBadRequest, "SerializationException",
		"Start of structure or map found where not expected, or malformed JSON: " + err.Error()}
}

const (
	msgNoSecret         = "Secrets Manager can't find the specified secret."
	msgMarkedForDeleted = "You can't perform this operation on the secret because it was marked for deletion."
)

// epoch is a timestamp in the default format of AWS JSON protocols: seconds
// since the Unix epoch as a JSON number, with millisecond precision.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

func writeJSON(w http.ResponseWriter, requestID string, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value written here is built by this package from plain types.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"__type":"InternalServiceError","Message":"smtest: cannot encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, requestID string, e *awsError) {
	writeJSON(w, requestID, e.status, struct {
		Type    string `json:"__type"`
		Message string `json:"Message"`
	}{e.code, e.message})
}

// Requests. Pointers tell an absent member from an empty one.

type tagShape struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

type filterShape struct {
	Key    *string  `json:"Key"`
	Values []string `json:"Values"`
}

type createSecretRequest struct {
	Name               *string    `json:"Name"`
	ClientRequestToken *string    `json:"ClientRequestToken"`
	Description        *string    `json:"Description"`
	KmsKeyID           *string    `json:"KmsKeyId"`
	SecretBinary       []byte     `json:"SecretBinary"`
	SecretString       *string    `json:"SecretString"`
	Tags               []tagShape `json:"Tags"`
}

type getSecretValueRequest struct {
	SecretID     *string `json:"SecretId"`
	VersionID    *string `json:"VersionId"`
	VersionStage *string `json:"VersionStage"`
}

type putSecretValueRequest struct {
	SecretID           *string  `json:"SecretId"`
	ClientRequestToken *string  `json:"ClientRequestToken"`
	SecretBinary       []byte   `json:"SecretBinary"`
	SecretString       *string  `json:"SecretString"`
	VersionStages      []string `json:"VersionStages"`
}

type updateSecretRequest struct {
	SecretID           *string `json:"SecretId"`
	ClientRequestToken *string `json:"ClientRequestToken"`
	Description        *string `json:"Description"`
	KmsKeyID           *string `json:"KmsKeyId"`
	SecretBinary       []byte  `json:"SecretBinary"`
	SecretString       *string `json:"SecretString"`
}

type updateSecretVersionStageRequest struct {
	SecretID            *string `json:"SecretId"`
	VersionStage        *string `json:"VersionStage"`
	MoveToVersionID     *string `json:"MoveToVersionId"`
	RemoveFromVersionID *string `json:"RemoveFromVersionId"`
}

type secretIDRequest struct {
	SecretID *string `json:"SecretId"`
}

type deleteSecretRequest struct {
	SecretID                   *string `json:"SecretId"`
	RecoveryWindowInDays       *int64  `json:"RecoveryWindowInDays"`
	ForceDeleteWithoutRecovery *bool   `json:"ForceDeleteWithoutRecovery"`
}

type batchGetSecretValueRequest struct {
	SecretIDList []string      `json:"SecretIdList"`
	Filters      []filterShape `json:"Filters"`
	MaxResults   *int32        `json:"MaxResults"`
	NextToken    *string       `json:"NextToken"`
}

type listSecretsRequest struct {
	IncludePlannedDeletion *bool         `json:"IncludePlannedDeletion"`
	MaxResults             *int32        `json:"MaxResults"`
	NextToken              *string       `json:"NextToken"`
	Filters                []filterShape `json:"Filters"`
	SortOrder              *string       `json:"SortOrder"`
	SortBy                 *string       `json:"SortBy"`
}

type listSecretVersionIDsRequest struct {
	SecretID          *string `json:"SecretId"`
	MaxResults        *int32  `json:"MaxResults"`
	NextToken         *string `json:"NextToken"`
	IncludeDeprecated *bool   `json:"IncludeDeprecated"`
}

// Responses. Secrets Manager returns only the members that have a value.

type arnNameResponse struct {
	ARN  string `json:"ARN,omitempty"`
	Name string `json:"Name,omitempty"`
}

type arnNameVersionResponse struct {
	ARN       string `json:"ARN,omitempty"`
	Name      string `json:"Name,omitempty"`
	VersionID string `json:"VersionId,omitempty"`
}

type putSecretValueResponse struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

// secretValueShape is both GetSecretValueResponse and SecretValueEntry: the
// two have the same members.
type secretValueShape struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"`
	SecretString  *string  `json:"SecretString,omitempty"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   *epoch   `json:"CreatedDate,omitempty"`
}

type apiErrorShape struct {
	SecretID  string `json:"SecretId"`
	ErrorCode string `json:"ErrorCode"`
	Message   string `json:"Message"`
}

type batchGetSecretValueResponse struct {
	SecretValues []secretValueShape `json:"SecretValues"`
	NextToken    *string            `json:"NextToken,omitempty"`
	Errors       []apiErrorShape    `json:"Errors"`
}

type describeSecretResponse struct {
	ARN                string              `json:"ARN"`
	Name               string              `json:"Name"`
	Description        *string             `json:"Description,omitempty"`
	KmsKeyID           *string             `json:"KmsKeyId,omitempty"`
	RotationEnabled    *bool               `json:"RotationEnabled,omitempty"`
	RotationLambdaARN  *string             `json:"RotationLambdaARN,omitempty"`
	RotationRules      *rotationRulesShape `json:"RotationRules,omitempty"`
	LastRotatedDate    *epoch              `json:"LastRotatedDate,omitempty"`
	NextRotationDate   *epoch              `json:"NextRotationDate,omitempty"`
	LastChangedDate    *epoch              `json:"LastChangedDate,omitempty"`
	LastAccessedDate   *epoch              `json:"LastAccessedDate,omitempty"`
	DeletedDate        *epoch              `json:"DeletedDate,omitempty"`
	Tags               []tagShape          `json:"Tags,omitempty"`
	VersionIdsToStages map[string][]string `json:"VersionIdsToStages,omitempty"`
	CreatedDate        *epoch              `json:"CreatedDate,omitempty"`
}

type deleteSecretResponse struct {
	ARN          string `json:"ARN,omitempty"`
	Name         string `json:"Name,omitempty"`
	DeletionDate *epoch `json:"DeletionDate,omitempty"`
}

type secretListEntry struct {
	ARN                    string              `json:"ARN"`
	Name                   string              `json:"Name"`
	Description            *string             `json:"Description,omitempty"`
	KmsKeyID               *string             `json:"KmsKeyId,omitempty"`
	LastChangedDate        *epoch              `json:"LastChangedDate,omitempty"`
	LastAccessedDate       *epoch              `json:"LastAccessedDate,omitempty"`
	DeletedDate            *epoch              `json:"DeletedDate,omitempty"`
	Tags                   []tagShape          `json:"Tags,omitempty"`
	SecretVersionsToStages map[string][]string `json:"SecretVersionsToStages,omitempty"`
	CreatedDate            *epoch              `json:"CreatedDate,omitempty"`
}

type listSecretsResponse struct {
	SecretList []secretListEntry `json:"SecretList"`
	NextToken  *string           `json:"NextToken,omitempty"`
}

type secretVersionsListEntry struct {
	VersionID        string   `json:"VersionId"`
	VersionStages    []string `json:"VersionStages,omitempty"`
	LastAccessedDate *epoch   `json:"LastAccessedDate,omitempty"`
	CreatedDate      *epoch   `json:"CreatedDate,omitempty"`
}

type listSecretVersionIDsResponse struct {
	Versions  []secretVersionsListEntry `json:"Versions"`
	NextToken *string                   `json:"NextToken,omitempty"`
	ARN       string                    `json:"ARN"`
	Name      string                    `json:"Name"`
}

type rotationRulesShape struct {
	AutomaticallyAfterDays *int64  `json:"AutomaticallyAfterDays,omitempty"`
	Duration               *string `json:"Duration,omitempty"`
	ScheduleExpression     *string `json:"ScheduleExpression,omitempty"`
}

type rotateSecretRequest struct {
	SecretID           *string             `json:"SecretId"`
	ClientRequestToken *string             `json:"ClientRequestToken"`
	RotationLambdaARN  *string             `json:"RotationLambdaARN"`
	RotationRules      *rotationRulesShape `json:"RotationRules"`
	RotateImmediately  *bool               `json:"RotateImmediately"`
}

type getRandomPasswordRequest struct {
	PasswordLength          *int64  `json:"PasswordLength"`
	ExcludeCharacters       *string `json:"ExcludeCharacters"`
	ExcludeNumbers          *bool   `json:"ExcludeNumbers"`
	ExcludePunctuation      *bool   `json:"ExcludePunctuation"`
	ExcludeUppercase        *bool   `json:"ExcludeUppercase"`
	ExcludeLowercase        *bool   `json:"ExcludeLowercase"`
	IncludeSpace            *bool   `json:"IncludeSpace"`
	RequireEachIncludedType *bool   `json:"RequireEachIncludedType"`
}

type getRandomPasswordResponse struct {
	RandomPassword string `json:"RandomPassword"`
}
