//! Command-line interface: one binary, one subcommand per role.

pub mod crdgen;
pub mod run;
pub mod simulate;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "jobrelay",
    version,
    about = "Relay Kubernetes RemoteJobs to remote job platforms"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CRD YAML, or write one file per kind with --out-dir.
    Crdgen(crdgen::Args),
    /// Run the operator (ApiClient and RemoteJob controllers).
    Run(run::Args),
    /// Run the platform simulator (Run:ai, OpenPAI, Eggplant DAI) for local demos and tests.
    ///
    /// Serves /runai (trainings API, Keycloak-shaped realm token endpoint, /api/v1/token), /openpai (v2 and
    /// v1 jobs, /api/v1/token login) and /dai (execution service, legacy /api/run, realm token endpoint)
    /// on one port, following ../shared/platforms.md.
    ///
    /// Jobs steer themselves through variables in the job: SIM_QUEUE_SECONDS (default 1),
    /// SIM_RUN_SECONDS (default 3) and SIM_OUTCOME=succeed|fail — in Run:ai spec.environmentVariables,
    /// OpenPAI protocol parameters (v1: jobEnvs), or DAI fields of the start request (RemoteJob
    /// spec.dai.extra).
    ///
    /// Admin API for tests: GET /_admin/counters (creates per platform/name, token requests per client,
    /// requests per route and status); POST /_admin/faults with a fault (or a list; same JSON as --fault),
    /// DELETE /_admin/faults; POST /_admin/pause and /_admin/resume (freeze all progress); GET /_admin/jobs;
    /// GET /_admin/requests (the latest 10,000 requests with arrival times).
    #[command(verbatim_doc_comment)]
    Simulate(simulate::Args),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Crdgen(args) => crdgen::run(args),
        Command::Simulate(args) => simulate::run(args).await,
        Command::Run(args) => run::run(args).await,
    }
}
