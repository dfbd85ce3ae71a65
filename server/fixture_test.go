package server

import (
	"context"
	"time"
)

// testNow is the fixed "now" of the tests.
var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fixture is a status with every feature of the page: two apps, phases of each
// kind, a workflow in progress, URLs and custom links, findings with FILE:LINE,
// an app-wide listing error, expiry in the future and in the past.
func fixture() Snapshot {
	return Snapshot{
		Leader:   true,
		Identity: "arbor-7d9c5-x2x8q",
		Apps: []App{
			{
				Name: "shop",
				Repo: "https://deploy-bot:s3cr3t-t0ken@git.example.com/acme/shop.git",
				Environments: []Environment{
					{
						Branch: "main", Commit: "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", Namespace: "shop-main",
						Phase:    "Ready",
						Workflow: &Workflow{Name: "patch", Step: "web", Done: 1, Total: 1, Finished: true},
						URLs:     []Link{{Name: "web", URL: "https://web-shop-main.preview.example.com"}},
						Links:    []Link{{Name: "Grafana", URL: "https://grafana.example.com/d/shop?var-ns=shop-main"}},
						Created:  testNow.Add(-50 * time.Hour), Updated: testNow.Add(-3 * time.Minute),
					},
					{
						Branch: "feature/checkout-v2", Commit: "9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c", Namespace: "shop-feature-checkout-v2-1a2b3c",
						Phase:    "Progressing",
						Workflow: &Workflow{Name: "setup", Step: "migrate", Done: 1, Total: 3},
						URLs:     []Link{{Name: "web", URL: "https://web-shop-feature-checkout-v2-1a2b3c.preview.example.com"}},
						Created:  testNow.Add(-90 * time.Second), Updated: testNow.Add(-10 * time.Second),
						ExpiresAt: testNow.Add(72 * time.Hour),
					},
					{
						Branch: "broken-template", Commit: "0123456789abcdef0123456789abcdef01234567", Namespace: "shop-broken-template",
						Phase:    "Failed",
						Workflow: &Workflow{Name: "setup", Step: "data", Done: 0, Total: 2, Failed: true},
						Problems: []Problem{
							{Where: ".release/application_template.yaml:14:7", Message: "services[1].ports[0].port: 70000 is not a port (1-65535)"},
							{Where: ".release/environment_variables.yaml:3", Message: "defaults[0].value: secret value committed to git", Warning: true},
						},
						Created: testNow.Add(-26 * time.Hour), Updated: testNow.Add(-5 * time.Minute),
						ExpiresAt: testNow.Add(-time.Hour),
					},
				},
			},
			{
				Name:     "docs",
				Repo:     "/srv/git/docs.git",
				Problems: []Problem{{Where: "docs@*", Message: "listing branches: dial tcp 10.0.0.7:443: connect: connection refused (nothing deleted)"}},
			},
		},
	}
}

func fixtureSource() Source {
	return SourceFunc(func(context.Context) (Snapshot, error) { return fixture(), nil })
}
