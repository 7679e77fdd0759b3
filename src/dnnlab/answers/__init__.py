"""The chapter's questions 1-7, each answered with an experiment: `dnnlab answers`.

One module per question (`q1_same_init` ... `q7_dropout_cost`), each with a frozen `Config`
(full defaults, plus `QUICK`), a pure `experiment(splits, config) -> Result` and
`write_section(doc, result, folder, config)`. `runner.run_answers` runs them and writes the report.
"""
