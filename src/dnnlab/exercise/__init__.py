"""Exercise 8 end to end (`dnnlab exercise`): its parts and options (`config`), training every
part and seed (`run`), and the report read back from the run folders: the runs as records
(`records`), tables and CSV (`tables`), sentences that answer c-f (`prose`), figures
(`figures`) and the document (`report`)."""
