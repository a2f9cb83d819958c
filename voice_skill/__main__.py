from voice_skill.cli import main

raise SystemExit(main())
