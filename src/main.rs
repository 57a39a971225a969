use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = jobrelay::cli::Cli::parse();
    match jobrelay::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
