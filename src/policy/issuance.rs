//! Who may get a token for which job, and how long it lives (SPEC §5).

use crate::domain::{GroupId, JobStatus, RunnerId};

/// What a runner serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerScope {
    Instance,
    /// A group runner serves its group's projects at any depth.
    Group(GroupId),
    /// A project runner serves the projects it was registered for.
    Projects(Vec<i64>),
}

/// Whether a runner serves a project; `ancestors` lists the project's groups at every depth.
pub fn runner_serves(runner: &RunnerScope, project_id: i64, ancestors: &[GroupId]) -> bool {
    match runner {
        RunnerScope::Instance => true,
        RunnerScope::Group(group) => ancestors.contains(group),
        RunnerScope::Projects(projects) => projects.contains(&project_id),
    }
}

/// Why a runner may not have a token for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MintRefusal {
    #[error("the job has finished")]
    JobFinished,
    #[error("the job is running on another runner")]
    OtherRunner,
    #[error("the runner is paused")]
    RunnerPaused,
    #[error("the runner does not serve the job's project")]
    NotServed,
    #[error("the user who triggered the pipeline is blocked")]
    UserBlocked,
    #[error("the job has outlived its timeout")]
    Expired,
}

/// What minting does to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintStep {
    /// First request: the job moves to `running`, bound to this runner.
    Start,
    /// The job already runs on this runner.
    Continue,
}

/// Decides whether `runner` may have a token for a job in `status` bound to `bound_runner`.
pub fn mint_eligibility(
    status: JobStatus,
    bound_runner: Option<RunnerId>,
    runner: RunnerId,
    runner_paused: bool,
    serves: bool,
    user_active: bool,
) -> Result<MintStep, MintRefusal> {
    if !serves {
        return Err(MintRefusal::NotServed);
    }
    if !user_active {
        return Err(MintRefusal::UserBlocked);
    }
    match status {
        JobStatus::Pending if runner_paused => Err(MintRefusal::RunnerPaused),
        JobStatus::Pending => Ok(MintStep::Start),
        JobStatus::Running if bound_runner == Some(runner) => Ok(MintStep::Continue),
        JobStatus::Running => Err(MintRefusal::OtherRunner),
        _ => Err(MintRefusal::JobFinished),
    }
}

/// `exp = started_at + max(runner timeout, job timeout or project build_timeout) + 3600 s`.
/// A runner without a maximum timeout counts as 0.
pub fn token_expiry(started_at: i64, runner_timeout: Option<i64>, job_timeout: Option<i64>, build_timeout: i64) -> i64 {
    let job = job_timeout.unwrap_or(build_timeout);
    started_at + runner_timeout.unwrap_or(0).max(job) + 3600
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn runner_types_serve_their_projects() {
        let ancestors = [1, 7, 9];
        assert!(runner_serves(&RunnerScope::Instance, 5, &ancestors));
        assert!(runner_serves(&RunnerScope::Group(1), 5, &ancestors), "top-level group serves nested project");
        assert!(runner_serves(&RunnerScope::Group(9), 5, &ancestors));
        assert!(!runner_serves(&RunnerScope::Group(2), 5, &ancestors));
        assert!(runner_serves(&RunnerScope::Projects(vec![4, 5]), 5, &ancestors));
        assert!(!runner_serves(&RunnerScope::Projects(vec![4]), 5, &ancestors));
    }

    #[test]
    fn eligibility_truth_table() {
        let r = 3;
        let rows = [
            (Pending, None, false, true, true, Ok(MintStep::Start)),
            (Pending, None, true, true, true, Err(MintRefusal::RunnerPaused)),
            (Running, Some(3), false, true, true, Ok(MintStep::Continue)),
            // a paused runner finishes the jobs it already runs
            (Running, Some(3), true, true, true, Ok(MintStep::Continue)),
            (Running, Some(4), false, true, true, Err(MintRefusal::OtherRunner)),
            (Success, Some(3), false, true, true, Err(MintRefusal::JobFinished)),
            (Failed, Some(3), false, true, true, Err(MintRefusal::JobFinished)),
            (Canceled, None, false, true, true, Err(MintRefusal::JobFinished)),
            (Pending, None, false, false, true, Err(MintRefusal::NotServed)),
            (Running, Some(3), false, true, false, Err(MintRefusal::UserBlocked)),
        ];
        for (status, bound, paused, serves, active, expected) in rows {
            assert_eq!(mint_eligibility(status, bound, r, paused, serves, active), expected, "{status:?} {bound:?}");
        }
    }

    #[test]
    fn expiry_takes_the_longer_timeout_plus_an_hour() {
        let t0 = 1_000_000;
        assert_eq!(token_expiry(t0, None, None, 3600), t0 + 7200, "project timeout, no runner limit");
        assert_eq!(token_expiry(t0, Some(600), None, 3600), t0 + 7200, "project timeout longer");
        assert_eq!(token_expiry(t0, Some(10_800), None, 3600), t0 + 14_400, "runner timeout longer");
        assert_eq!(token_expiry(t0, Some(600), Some(1800), 3600), t0 + 5400, "job timeout replaces the project's");
        assert_eq!(token_expiry(t0, None, Some(60), 86_400), t0 + 3660);
    }
}
