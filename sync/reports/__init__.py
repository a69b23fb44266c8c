"""Reports over the warehouse (`ecosync report …`), all honouring partners' share policies."""
