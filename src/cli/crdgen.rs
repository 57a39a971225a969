//! `jobrelay crdgen`: the only writer of the CRD files (crds/ and the chart's files/crds/).

use std::path::PathBuf;

use crate::crd;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write `<plural>.<group>.yaml` files into these directories instead of printing.
    #[arg(long = "out-dir")]
    pub out_dirs: Vec<PathBuf>,
    /// With --out-dir: do not write, exit non-zero and name the files that differ (drift check).
    #[arg(long, requires = "out_dirs")]
    pub check: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.out_dirs.is_empty() {
        print!("{}", crd::generated_crds_stream());
        return Ok(());
    }
    let mut drifted = Vec::new();
    for dir in &args.out_dirs {
        for (stem, yaml) in crd::generated_crds() {
            let path = dir.join(format!("{stem}.yaml"));
            if args.check {
                if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                    drifted.push(path.display().to_string());
                }
            } else {
                std::fs::create_dir_all(dir)?;
                std::fs::write(&path, yaml)?;
            }
        }
    }
    if !drifted.is_empty() {
        anyhow::bail!(
            "generated CRDs differ from the committed files (run `make crds`): {}",
            drifted.join(", ")
        );
    }
    Ok(())
}
