package forge

import (
	"encoding/json"
	"errors"
	"slices"
)

// hubPayload is the part of GitHub's and Gitea's push, delete and
// pull_request payloads arbor reads (Gitea copies GitHub's shape, with
// repo_id beside each side of the pull request).
type hubPayload struct {
	Action      string `json:"action"`
	Number      int64  `json:"number"`
	Ref         string `json:"ref"`
	RefType     string `json:"ref_type"`
	After       string `json:"after"`
	Deleted     bool   `json:"deleted"`
	PullRequest *struct {
		Number int64   `json:"number"`
		State  string  `json:"state"`
		Draft  bool    `json:"draft"`
		Merged bool    `json:"merged"`
		Labels []label `json:"labels"`
		Head   hubSide `json:"head"`
		Base   hubSide `json:"base"`
	} `json:"pull_request"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

type hubSide struct {
	Ref    string `json:"ref"`
	SHA    string `json:"sha"`
	RepoID int64  `json:"repo_id"` // Gitea
	Repo   *struct {
		ID int64 `json:"id"`
	} `json:"repo"`
}

func (s hubSide) repoID() int64 {
	if s.RepoID != 0 {
		return s.RepoID
	}
	if s.Repo != nil {
		return s.Repo.ID
	}
	return 0
}

func parseGitHub(event string, body []byte) (Event, error) {
	return parseHub(event, body, map[string]string{
		"opened": ActionOpened, "reopened": ActionReopened, "synchronize": ActionSynchronize,
		"labeled": ActionLabeled, "unlabeled": ActionUnlabeled, "closed": ActionClosed,
		"edited": ActionEdited, "ready_for_review": ActionEdited, "converted_to_draft": ActionEdited,
	})
}

func parseGitea(event string, body []byte) (Event, error) {
	return parseHub(event, body, map[string]string{
		"opened": ActionOpened, "reopened": ActionReopened, "synchronized": ActionSynchronize,
		"label_updated": ActionLabeled, "label_cleared": ActionUnlabeled, "closed": ActionClosed,
		"edited": ActionEdited,
	})
}

// parseHub parses GitHub's and Gitea's events; actions maps the forge's
// pull request actions to Action*.
func parseHub(event string, body []byte, actions map[string]string) (Event, error) {
	switch event {
	case "ping":
		return Event{Kind: KindPing}, nil
	case "push", "delete", "pull_request":
	default:
		return Event{Kind: KindOther}, nil
	}
	var p hubPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, err
	}
	repo := p.Repository.FullName
	switch event {
	case "push":
		return pushEvent(repo, p.Ref, p.After, p.Deleted), nil
	case "delete":
		return deleteEvent(repo, p.Ref, p.RefType), nil
	}
	pr := p.PullRequest
	if pr == nil {
		return Event{}, errors.New("pull_request event without a pull_request")
	}
	ev := Event{Kind: KindPullRequest, Repository: repo, Number: pr.Number, HeadBranch: pr.Head.Ref, HeadSHA: pr.Head.SHA,
		Draft: pr.Draft, Labels: labelNames(pr.Labels)}
	if ev.Number == 0 {
		ev.Number = p.Number
	}
	ev.SameRepo = pr.Head.repoID() != 0 && pr.Head.repoID() == pr.Base.repoID()
	ev.Action = actions[p.Action]
	switch {
	case ev.Action == "":
		ev.Action = ActionOther
	case ev.Action == ActionClosed && pr.Merged:
		ev.Action = ActionMerged
	}
	return ev, nil
}

// gitlabPayload is the part of GitLab's Merge Request Hook and Push Hook
// payloads arbor reads.
type gitlabPayload struct {
	ObjectKind string `json:"object_kind"`
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Project    struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	ObjectAttributes *struct {
		IID             int64  `json:"iid"`
		Action          string `json:"action"`
		State           string `json:"state"`
		SourceBranch    string `json:"source_branch"`
		SourceProjectID int64  `json:"source_project_id"`
		TargetProjectID int64  `json:"target_project_id"`
		Draft           bool   `json:"draft"`
		WorkInProgress  bool   `json:"work_in_progress"`
		OldRev          string `json:"oldrev"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
	Labels  []gitlabLabel `json:"labels"`
	Changes struct {
		Labels *struct {
			Previous []gitlabLabel `json:"previous"`
			Current  []gitlabLabel `json:"current"`
		} `json:"labels"`
	} `json:"changes"`
}

type gitlabLabel struct {
	Title string `json:"title"`
}

func titles(ls []gitlabLabel) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Title)
	}
	return out
}

func parseGitLab(event string, body []byte) (Event, error) {
	switch event {
	case "Push Hook", "Merge Request Hook":
	default:
		return Event{Kind: KindOther}, nil
	}
	var p gitlabPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return Event{}, err
	}
	repo := p.Project.PathWithNamespace
	if event == "Push Hook" {
		return pushEvent(repo, p.Ref, p.After, false), nil
	}
	a := p.ObjectAttributes
	if a == nil {
		return Event{}, errors.New("merge request event without object_attributes")
	}
	ev := Event{Kind: KindPullRequest, Repository: repo, Number: a.IID, HeadBranch: a.SourceBranch, HeadSHA: a.LastCommit.ID,
		Draft: a.Draft || a.WorkInProgress, Labels: titles(p.Labels),
		SameRepo: a.SourceProjectID != 0 && a.SourceProjectID == a.TargetProjectID}
	ev.Action = gitlabAction(a.Action, a.OldRev, p.Changes.Labels)
	return ev, nil
}

// gitlabAction maps a merge request's action. GitLab says "update" for new
// commits (with oldrev), label changes (with changes.labels) and edits alike.
func gitlabAction(action, oldRev string, labels *struct {
	Previous []gitlabLabel `json:"previous"`
	Current  []gitlabLabel `json:"current"`
}) string {
	switch action {
	case "open":
		return ActionOpened
	case "reopen":
		return ActionReopened
	case "close":
		return ActionClosed
	case "merge":
		return ActionMerged
	case "update":
	default:
		return ActionOther
	}
	if oldRev != "" {
		return ActionSynchronize
	}
	if labels == nil {
		return ActionEdited
	}
	before := titles(labels.Previous)
	for _, l := range titles(labels.Current) {
		if !slices.Contains(before, l) {
			return ActionLabeled
		}
	}
	return ActionUnlabeled
}
