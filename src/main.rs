#[tokio::main]
async fn main() {
    let cli = aws_iam_key_exporter::config::cli::Cli::parse_args();
    let code = match aws_iam_key_exporter::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aws-iam-key-exporter: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
