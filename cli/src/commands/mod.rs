//! One module per subcommand: its clap arguments next to the function that runs it.

pub mod r#gen;
pub mod jobs;
pub mod redrive;
pub mod rehearse;
pub mod run;
pub mod serve;
pub mod status;
