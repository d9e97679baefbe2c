# Training runs, metric points, evaluations and judgments arrive with the training issue.
