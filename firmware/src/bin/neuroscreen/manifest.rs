//! `neuroscreen manifest`: signed model sets.

use crate::settings::default_models_dir;
use anyhow::Result;
use firmware::signing;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Make a signing key pair: the private key (owner-only) at --out, the public key at <out>.pub
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign <models>/manifest.json (after checking every model's sha256) into manifest.json.sig
    Sign {
        /// Private key file from `keygen`
        #[arg(long)]
        key: PathBuf,
        /// Folder holding manifest.json [default as for scan]
        #[arg(long)]
        models: Option<PathBuf>,
    },
    /// Check a model set as a board pinning --public-key does: signature, then hashes
    Verify {
        /// 64 hex digits, as in `models.public_key`
        #[arg(long)]
        public_key: String,
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

pub fn run(action: Action) -> Result<usize> {
    match action {
        Action::Keygen { out } => {
            let public = signing::keygen(&out)?;
            println!(
                "private key: {} (owner-only; keep it off the board)",
                out.display()
            );
            println!(
                "public key:  {public}\n  (in {}; pin it on the board as [models] public_key)",
                signing::public_key_path(&out).display()
            );
        }
        Action::Sign { key, models } => {
            let models = models.unwrap_or_else(default_models_dir);
            let sig = signing::sign(&key, &models)?;
            println!("signed: {}", sig.display());
        }
        Action::Verify { public_key, models } => {
            let models = models.unwrap_or_else(default_models_dir);
            signing::verify(&public_key, &models)
                .map_err(|e| anyhow::anyhow!(e).context("model set refused"))?;
            println!("verified: signature and every model's sha256");
        }
    }
    Ok(0)
}
