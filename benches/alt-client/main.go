// alt-client: what users run today without jobrelay - one batch/v1 Job per remote job, whose pod gets an
// OAuth2 token, submits one Run:ai training and polls it until it ends. `make bench` (benches/alternative.rs)
// runs 50 of these on the node beside jobrelay and compares pods, memory, apiserver writes and time.
//
// Environment: BASE_URL (e.g. http://10.0.0.12:8090/runai), TOKEN_URL, CLIENT_ID, CLIENT_SECRET, NAME,
// PROJECT_ID, CLUSTER_ID, IMAGE, POLL_SECONDS (default 2), RUN_SECONDS (the simulator's SIM_RUN_SECONDS).
// Exit 0 when the training Completed, 1 otherwise. Static (CGO_ENABLED=0), standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

func env(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "alt-client: "+format+"\n", a...)
	os.Exit(1)
}

var client = &http.Client{Timeout: 30 * time.Second}

func token() string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {env("CLIENT_ID", "")},
		"client_secret": {env("CLIENT_SECRET", "")}, "scope": {"openid"}}
	resp, err := client.PostForm(env("TOKEN_URL", ""), form)
	if err != nil {
		fail("token: %v", err)
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		fail("token: status %d, %v", resp.StatusCode, err)
	}
	return t.AccessToken
}

func call(method, path, tok string, body any, out any) int {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, env("BASE_URL", "")+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		fail("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func main() {
	tok := token()
	body := map[string]any{
		"name": env("NAME", "alt"), "projectId": env("PROJECT_ID", "5"), "clusterId": env("CLUSTER_ID", "c0ffee00-0000-4000-8000-000000000000"),
		"useGivenNameAsPrefix": false,
		"spec": map[string]any{"image": env("IMAGE", "busybox"), "environmentVariables": []map[string]string{
			{"name": "SIM_RUN_SECONDS", "value": env("RUN_SECONDS", "1")}, {"name": "SIM_QUEUE_SECONDS", "value": "0.2"}}},
	}
	var created struct {
		WorkloadID string `json:"workloadId"`
	}
	if code := call("POST", "/api/v1/workloads/trainings", tok, body, &created); code/100 != 2 || created.WorkloadID == "" {
		fail("create: status %d", code)
	}
	poll, _ := strconv.ParseFloat(env("POLL_SECONDS", "2"), 64)
	for {
		time.Sleep(time.Duration(poll * float64(time.Second)))
		var t struct {
			ActualPhase string `json:"actualPhase"`
		}
		code := call("GET", "/api/v1/workloads/trainings/"+created.WorkloadID, tok, nil, &t)
		if code == 401 {
			tok = token()
			continue
		}
		switch t.ActualPhase {
		case "Completed":
			fmt.Println("alt-client:", created.WorkloadID, "Completed")
			return
		case "Failed", "Stopped", "Deleted":
			fail("%s ended %s", created.WorkloadID, t.ActualPhase)
		}
	}
}
