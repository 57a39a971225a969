//! Command-line interface: one binary, one subcommand per role.

pub mod crdgen;
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
    /// Run the platform simulator (Run:ai, OpenPAI, Eggplant DAI) for tests and demos.
    Simulate(simulate::Args),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Crdgen(args) => crdgen::run(args),
        Command::Simulate(args) => simulate::run(args).await,
    }
}
