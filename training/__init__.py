"""Training, evaluation and data-loading scripts for Show-Attend-Tell."""
